package gateway

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testserve"
)

// bound bounds every wait of the tests.
const bound = 20 * time.Second

// origin is an upstream in the test process. It answers "NAME PATH" with the request's
// X-Test field echoed in X-Echo, and counts its requests by path.
type origin struct {
	addr string
	mu   sync.Mutex // guards hits
	hits map[string]int
}

func startOrigin(t testing.TB, name string) *origin {
	t.Helper()
	o := &origin{hits: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: bound, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.hits[r.URL.Path]++
		o.mu.Unlock()
		w.Header().Set("X-Echo", r.Header.Get("X-Test"))
		w.Header().Set("X-Origin", name)
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/big" {
			io.WriteString(w, strings.Repeat("compressible text ", 1000))
			return
		}
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		if strings.HasPrefix(r.URL.Path, "/cacheable") {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		fmt.Fprintf(w, "%s %s", name, r.URL.RequestURI())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

func (o *origin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running is a gateway serving on real listeners.
type running struct {
	g    *Gateway
	file string
	log  *logBuffer
}

// writeFile writes a configuration into dir and returns its path.
func writeFile(t testing.TB, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve loads the configuration file at path and runs it until the test ends.
func serve(t testing.TB, path string) *running {
	t.Helper()
	return serveWith(t, path, Options{})
}

// serveWith is serve with the gateway's options (its Logger is replaced).
func serveWith(t testing.TB, path string, o Options) *running {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	lb := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(lb, nil))
	o.Logger = logger
	g, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := g.Services()
	if err != nil {
		t.Fatal(err)
	}
	testserve.Run(t, testserve.Options{Logger: logger, ReportErr: true}, svcs...)
	for _, l := range c.Listeners {
		if !strings.HasPrefix(l.Address, "unix:") {
			testbin.WaitListening(t, l.Address)
		}
	}
	return &running{g: g, file: path, log: lb}
}

// rawGet sends target exactly as given (a client library would clean it) and returns the
// status line and the rest of the response.
func rawGet(t testing.TB, addr, target string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
	b, _ := io.ReadAll(c)
	return string(b)
}

// expand replaces {{NAME}} in s by vars[NAME].
func expand(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}
