package ops

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
)

// TestH2Flags chains two pingora processes in quick mode: curl speaks cleartext HTTP/2 with
// prior knowledge to the first (--h2c), which speaks HTTP/2 to the second (--upstream-h2, the
// second also --h2c), which speaks HTTP/1.1 to the origin.
func TestH2Flags(t *testing.T) {
	bin := testbin.Binary(t)
	var protos []string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Proto
		io.WriteString(w, "origin says hi")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	back := testbin.FreeAddr(t)
	pb := testbin.Start(t, bin, "--listen", back, "--h2c", "--upstream", ln.Addr().String(), "--access-log", "-")
	pb.WaitLog("listening", back)
	front := testbin.FreeAddr(t)
	pf := testbin.Start(t, bin, "--listen", front, "--h2c", "--upstream-h2", "--upstream", back)
	pf.WaitLog("listening", front)

	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed")
		}
		t.Skip("curl is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	out, err := exec.CommandContext(ctx, curl, "-sS", "--http2-prior-knowledge",
		"-w", "\n%{http_version}", "http://"+front+"/x").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if got := string(out); got != "origin says hi\n2" {
		t.Fatalf("curl got %q, want the origin's body over HTTP/2", got)
	}
	select {
	case p := <-seen:
		protos = append(protos, p)
	case <-time.After(waitBound):
		t.Fatal("origin saw no request")
	}
	// The back proxy's access log tells that the front spoke HTTP/2 to it.
	pb.WaitLog(`"msg":"access"`, `"path":"/x"`, `"proto":"HTTP/2"`)
	// An HTTP/1.1 client still works on the front's h2c port.
	resp, err := http.Get("http://" + front + "/y")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 1 || string(b) != "origin says hi" {
		t.Fatalf("HTTP/1.1 client on the h2c port: %s %q", resp.Proto, b)
	}
	if strings.Join(protos, ",") != "HTTP/1.1" {
		t.Fatalf("origin saw %v", protos)
	}
}
