// Package configs holds ready configuration files of the pingora binary. Its test starts each
// one as a real process, with its addresses moved to free loopback ports and its upstreams
// replaced by origins of the test, and exercises it with Go clients and curl.
package configs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/internal/testserve"
)

// bound bounds every wait.
const bound = testbin.Bound

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) { testbin.Main(m) }

// origin answers "NAME PATH", and 200 on /healthz while healthy.
type origin struct {
	addr string
	mu   sync.Mutex // guards down
	down bool
}

func startOrigin(t *testing.T, name string) *origin {
	t.Helper()
	o := &origin{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: bound, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		down := o.down
		o.mu.Unlock()
		if r.URL.Path == "/healthz" && down {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("X-Origin", name)
		w.Header().Set("Server", "origin")
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Cookie", r.Header.Get("Cookie"))
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, name+" "+r.URL.RequestURI()+" "+strings.Repeat(".", 100))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

func (o *origin) setDown(d bool) {
	o.mu.Lock()
	o.down = d
	o.mu.Unlock()
}

// start runs pingora -c file after checking it with -t, and waits for addrs to listen. At
// the test's end it stops the process with SIGTERM.
func start(t *testing.T, file string, addrs ...string) *testbin.Proc {
	t.Helper()
	bin := testbin.Binary(t)
	if out, err := exec.Command(bin, "-t", "-c", file).CombinedOutput(); err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("pingora -t: %v\n%s", err, out)
	}
	p := testbin.Start(t, bin, "-c", file)
	t.Cleanup(func() {
		if !p.Stop(syscall.SIGTERM) {
			t.Errorf("pingora did not stop on SIGTERM:\n%s", p.Log())
		}
		if t.Failed() {
			t.Logf("pingora's log:\n%s", p.Log())
		}
	})
	p.WaitListening(addrs...)
	return p
}

// prepare copies the example file into a temporary directory with the replacements made.
func prepare(t *testing.T, name string, repl ...string) (path, dir string) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.NewReplacer(repl...).Replace(string(data))), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

// get sends a GET with the header pairs hdr.
func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	return testserve.Do(t, c, http.MethodGet, url, hdr...)
}

// curl runs curl with args and returns its output; the test is skipped without curl.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--max-time", "20"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestLoadBalancer(t *testing.T) {
	o := []*origin{startOrigin(t, "A"), startOrigin(t, "B"), startOrigin(t, "C")}
	listen := testbin.FreeAddr(t)
	repl := []string{"127.0.0.1:8080", listen, "127.0.0.1:9001", o[0].addr, "127.0.0.1:9002", o[1].addr, "127.0.0.1:9003", o[2].addr, "interval: 2s", "interval: 100ms"}
	path, _ := prepare(t, "load-balancer.yaml", repl...)
	p := start(t, path, listen)
	c := testserve.Client(t)
	count := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			resp, _ := get(t, c, "http://"+listen+"/")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			seen[resp.Header.Get("X-Origin")]++
			if resp.Header.Get("X-Seen-Forwarded-For") != "127.0.0.1" {
				t.Fatalf("X-Forwarded-For %q", resp.Header.Get("X-Seen-Forwarded-For"))
			}
		}
		return seen
	}
	if seen := count(40); seen["A"] != 10 || seen["B"] != 10 || seen["C"] != 20 {
		t.Errorf("weights 1:1:2 gave %v", seen)
	}
	// A failing health check takes B out.
	o[1].setDown(true)
	time.Sleep(500 * time.Millisecond)
	if seen := count(20); seen["B"] != 0 {
		t.Errorf("unhealthy backend still used: %v", seen)
	}
	o[1].setDown(false)

	// SIGHUP applies a new file: one backend left.
	edited := strings.NewReplacer("      - "+o[0].addr+"\n", "", "      - "+o[1].addr+"\n", "").Replace(mustRead(t, path))
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitLog("configuration reloaded")
	if seen := count(10); seen["C"] != 10 {
		t.Errorf("after the reload: %v", seen)
	}
	// A broken file is refused, with its line, and the running configuration stays.
	if err := os.WriteFile(path, []byte(strings.Replace(edited, "retries: 2", "retries: many", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitLog("configuration reload failed")
	if !strings.Contains(p.Log(), "want an integer") {
		t.Errorf("the reason is not logged:\n%s", p.Log())
	}
	if seen := count(5); seen["C"] != 5 {
		t.Errorf("after the failed reload: %v", seen)
	}
	if out := curl(t, "-i", "http://"+listen+"/curl"); !strings.Contains(out, "200") || !strings.Contains(out, "C /curl") {
		t.Errorf("curl:\n%s", out)
	}
}

func TestTLSTerminator(t *testing.T) {
	o := startOrigin(t, "app")
	tlsAddr, plain := testbin.FreeAddr(t), testbin.FreeAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	path, dir := prepare(t, "tls-h2.yaml", "127.0.0.1:8443", tlsAddr, "127.0.0.1:8080", plain, "127.0.0.1:9001", o.addr, "$host:8443", "$host:"+tlsPort)
	ca, err := testpki.NewCA("example CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"example.com", "api.example.com"} {
		leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{n}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := leaf.WriteFiles(filepath.Join(dir, "certs"), n); err != nil {
			t.Fatal(err)
		}
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, path, tlsAddr, plain)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	for _, name := range []string{"example.com", "api.example.com"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}, ForceAttemptHTTP2: true}
		resp, body := get(t, &http.Client{Transport: tr, Timeout: bound}, "https://"+tlsAddr+"/x")
		tr.CloseIdleConnections()
		if resp.Proto != "HTTP/2.0" || !strings.HasPrefix(body, "app /x") || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s: %s %q %v", name, resp.Proto, body, resp.Header)
		}
		if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != name {
			t.Errorf("SNI %s served %s", name, cn)
		}
	}
	resp, _ := get(t, testserve.Client(t), "http://"+plain+"/a?b=1", "Host", "example.com")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://example.com:"+tlsPort+"/a?b=1" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	out := curl(t, "-i", "--http2", "--cacert", caFile, "--resolve", "api.example.com:"+tlsPort+":127.0.0.1", "https://api.example.com:"+tlsPort+"/curl")
	if !strings.HasPrefix(out, "HTTP/2 200") || !strings.Contains(out, "app /curl") {
		t.Errorf("curl:\n%s", out)
	}
}

func TestAPIGateway(t *testing.T) {
	users, o2, o3 := startOrigin(t, "users"), startOrigin(t, "orders-1"), startOrigin(t, "orders-2")
	listen := testbin.FreeAddr(t)
	path, _ := prepare(t, "api-gateway.yaml", "127.0.0.1:8080", listen, "127.0.0.1:9001", users.addr, "127.0.0.1:9002", o2.addr, "127.0.0.1:9003", o3.addr)
	p := start(t, path, listen)
	c := testserve.Client(t)
	base := "http://" + listen

	resp, body := get(t, c, base+"/v1/users/42", "X-API-Key", "k1", "Cookie", "session=1", "Accept-Encoding", "gzip")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Server") != "" || resp.Header.Get("X-Seen-Cookie") != "" {
		t.Errorf("users: %d %v", resp.StatusCode, resp.Header)
	}
	_ = body
	limited := 0
	for range 10 {
		if resp, _ := get(t, c, base+"/v1/users/1", "X-API-Key", "burst"); resp.StatusCode == 429 {
			limited++
		}
	}
	if limited == 0 || limited > 5 {
		t.Errorf("10 requests against a limit of 5/s: %d refused", limited)
	}
	if resp, _ := get(t, c, base+"/v1/users/1", "X-API-Key", "other"); resp.StatusCode != 200 {
		t.Errorf("another key was limited: %d", resp.StatusCode)
	}
	first, _ := get(t, c, base+"/v1/orders/7", "X-API-Key", "k1")
	for range 5 {
		again, body := get(t, c, base+"/v1/orders/7", "X-API-Key", "k1")
		if again.Header.Get("X-Origin") != first.Header.Get("X-Origin") || !strings.Contains(body, "/orders/7") {
			t.Fatalf("orders of one key moved: %s then %s (%q)", first.Header.Get("X-Origin"), again.Header.Get("X-Origin"), body)
		}
	}
	if resp, body := get(t, c, base+"/v1/nothing"); resp.StatusCode != 404 || body != `{"error":"no such endpoint: GET /v1/nothing"}` {
		t.Errorf("fallback: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, c, base+"/admin/x"); resp.StatusCode != 401 {
		t.Errorf("admin without credentials: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", base+"/admin/x", nil)
	req.SetBasicAuth("admin", "change me")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("admin: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	out := curl(t, "-i", "-H", "X-API-Key: curl", "--compressed", base+"/v1/users/7")
	if !strings.Contains(out, "200") || !strings.Contains(out, "users /users/7") {
		t.Errorf("curl:\n%s", out)
	}
	// The access log is on standard error, without the health checks of the route that turns
	// it off.
	get(t, c, base+"/healthz")
	p.WaitLog(`"path":"/users/7"`) // the path as rewritten
	if strings.Contains(p.Log(), `"path":"/healthz"`) {
		t.Error("the health route was logged")
	}
}

func TestStaticSite(t *testing.T) {
	listen := testbin.FreeAddr(t)
	www, err := filepath.Abs("www")
	if err != nil {
		t.Fatal(err)
	}
	path, _ := prepare(t, "static-site.yaml", "127.0.0.1:8080", listen, "root: www", "root: "+www)
	start(t, path, listen)
	c := testserve.Client(t)
	base := "http://" + listen
	resp, body := get(t, c, base+"/")
	if resp.StatusCode != 200 || !strings.Contains(body, "Served by pingora") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := get(t, c, base+"/", "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	resp, body = get(t, c, base+"/assets/css/site.css", "Range", "bytes=0-3")
	if resp.StatusCode != 206 || body != "body" || resp.Header.Get("Cache-Control") != "public, max-age=86400" {
		t.Errorf("range: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ := get(t, c, base+"/index.php"); resp.StatusCode != 301 || resp.Header.Get("Location") != "/" {
		t.Errorf("old home: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := get(t, c, base+"/blog/2024/post?x=1"); resp.Header.Get("Location") != "https://blog.example.com/blog/2024/post?x=1" {
		t.Errorf("blog: %q", resp.Header.Get("Location"))
	}
	if resp, _ := get(t, c, base+"/missing.html"); resp.StatusCode != 404 {
		t.Errorf("missing: %d", resp.StatusCode)
	}
	out := curl(t, "-i", "--compressed", base+"/")
	if !strings.Contains(out, "200 OK") || !strings.Contains(out, "Served by pingora") {
		t.Errorf("curl:\n%s", out)
	}
	out = curl(t, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "If-None-Match: "+etag, base+"/")
	if out != "304" {
		t.Errorf("curl conditional: %s", out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCachingProxy(t *testing.T) {
	var hits sync.Map // path -> *atomic.Int64 of origin requests
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: bound, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "content of "+r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	listen := testbin.FreeAddr(t)
	path, dir := prepare(t, "caching-proxy.yaml", "127.0.0.1:8080", listen, "127.0.0.1:9001", ln.Addr().String())
	start(t, path, listen)
	c := testserve.Client(t)
	for _, p := range []string{"/page", "/static/app.js"} {
		for i := range 3 {
			resp, body := get(t, c, "http://"+listen+p)
			if resp.StatusCode != 200 || body != "content of "+p {
				t.Fatalf("%s #%d: %d %q", p, i, resp.StatusCode, body)
			}
			if cs := resp.Header.Get("Cache-Status"); i > 0 && !strings.Contains(cs, "hit") {
				t.Errorf("%s #%d: Cache-Status %q", p, i, cs)
			}
		}
		n, _ := hits.Load(p)
		if got := n.(*atomic.Int64).Load(); got != 1 {
			t.Errorf("%s: the origin saw %d requests, want 1", p, got)
		}
	}
	// The assets cache is a directory beside the file.
	if ents, err := os.ReadDir(filepath.Join(dir, "cache-assets")); err != nil || len(ents) == 0 {
		t.Errorf("no disk cache in %s: %v", dir, err)
	}
}

func TestWebSocketApp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: bound, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			io.WriteString(w, "page")
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			c.Write(ctx, typ, append([]byte("echo: "), msg...))
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	listen := testbin.FreeAddr(t)
	path, _ := prepare(t, "websocket-app.yaml", "127.0.0.1:8080", listen, "127.0.0.1:9001", ln.Addr().String())
	start(t, path, listen)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+listen+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "echo: hi" {
		t.Fatalf("%q, %v", msg, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	// Elsewhere an upgrade is refused, and plain requests are served.
	if _, resp, err := websocket.Dial(ctx, "ws://"+listen+"/other", nil); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("upgrade outside /ws: %v %v", resp, err)
	}
	if resp, body := get(t, testserve.Client(t), "http://"+listen+"/"); resp.StatusCode != 200 || body != "page" {
		t.Fatalf("page: %d %q", resp.StatusCode, body)
	}
}
