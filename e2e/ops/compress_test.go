package ops

import (
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/pingora-go/pingora/internal/testbin"
)

// TestCompressFlag runs the binary with --compress in quick mode and checks that a client
// accepting gzip gets a gzip body that decodes to the origin's answer.
func TestCompressFlag(t *testing.T) {
	bin := testbin.Binary(t)
	text := strings.Repeat("compressible text ", 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, text)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	listen := testbin.FreeAddr(t)
	p := testbin.Start(t, bin, "--listen", listen, "--upstream", ln.Addr().String(), "--compress")
	p.WaitLog("listening", listen)
	req, _ := http.NewRequest("GET", "http://"+listen+"/hello", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil || string(b) != text {
		t.Fatalf("decoded %q, %v", b, err)
	}
}
