package proxy_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/nginxtest"
	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// startNginx runs a real nginx serving dir on a free loopback port until the test ends. In CI
// (CI set) a missing nginx fails the test: .ci/run installs it.
func startNginx(t *testing.T, dir string) string {
	t.Helper()
	bin, err := nginxtest.Find()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nginx is not installed; .ci/run installs it")
		}
		t.Skip(err)
	}
	addr := testbin.FreeAddr(t)
	prefix := t.TempDir()
	cmd, err := nginxtest.Command(bin, prefix, nginxtest.Conf(prefix, 256, fmt.Sprintf(`    keepalive_requests 10000;
    server {
        listen %s;
        root %s;
        location /gz/ { gzip on; gzip_min_length 1; gzip_types *; }
        location = /status201 { return 201 "created\n"; }
        location = /redirect { return 302 /target; }
    }`, addr, dir)))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNginxUpstream(t *testing.T) {
	dir := t.TempDir()
	small := []byte("hello from nginx\n")
	big := make([]byte, 3<<20+17)
	rand.Read(big)
	text := bytes.Repeat([]byte("compressible text "), 5000)
	os.WriteFile(filepath.Join(dir, "small.txt"), small, 0o644)
	os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644)
	os.Mkdir(filepath.Join(dir, "gz"), 0o755)
	os.WriteFile(filepath.Join(dir, "gz", "text.txt"), text, 0o644)
	ngx := startNginx(t, dir)

	app := &testApp{peers: []*upstream.Peer{mustPeer(t, ngx)}}
	addr, p := startProxy(t, app, proxy.Options{})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	get := func(path string, hdr map[string]string, method string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s body: %v", method, path, err)
		}
		return resp, b
	}

	resp, b := get("/small.txt", nil, "GET")
	if resp.StatusCode != 200 || !bytes.Equal(b, small) || resp.Header.Get("Server") == "" {
		t.Fatalf("small: %d %q", resp.StatusCode, b)
	}
	etag := resp.Header.Get("ETag")
	resp, b = get("/big.bin", nil, "GET")
	if resp.StatusCode != 200 || !bytes.Equal(b, big) {
		t.Fatalf("big: %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, b = get("/big.bin", nil, "HEAD")
	if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != int64(len(big)) {
		t.Fatalf("head: %d len %d body %d", resp.StatusCode, resp.ContentLength, len(b))
	}
	resp, _ = get("/small.txt", map[string]string{"If-None-Match": etag}, "GET")
	if resp.StatusCode != 304 {
		t.Fatalf("conditional: %d, want 304", resp.StatusCode)
	}
	resp, b = get("/big.bin", map[string]string{"Range": "bytes=100-199"}, "GET")
	if resp.StatusCode != 206 || !bytes.Equal(b, big[100:200]) {
		t.Fatalf("range: %d %d bytes", resp.StatusCode, len(b))
	}
	// nginx compresses this one on the fly with chunked framing.
	resp, b = get("/gz/text.txt", map[string]string{"Accept-Encoding": "gzip"}, "GET")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || len(b) == 0 || len(b) >= len(text) {
		t.Fatalf("gzip: %d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Encoding"), len(b))
	}
	resp, _ = get("/missing", nil, "GET")
	if resp.StatusCode != 404 {
		t.Fatalf("missing: %d", resp.StatusCode)
	}
	resp, b = get("/status201", nil, "POST")
	if resp.StatusCode != 201 || string(b) != "created\n" {
		t.Fatalf("201: %d %q", resp.StatusCode, b)
	}
	noRedirect := *client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r2, err := noRedirect.Get("http://" + addr + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 302 || !strings.HasSuffix(r2.Header.Get("Location"), "/target") {
		t.Fatalf("redirect: %d %q", r2.StatusCode, r2.Header.Get("Location"))
	}
	// Every exchange above ended cleanly: nginx's keep-alive connection was reused.
	st := p.Connector().Stats()
	if st.Dials != 1 || st.Reuses < 8 {
		t.Errorf("upstream dials=%d reuses=%d, want 1 dial and every other request reused", st.Dials, st.Reuses)
	}
}
