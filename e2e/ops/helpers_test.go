// Package ops tests the operations of the pingora binary with real processes: configuration
// checks, signals, daemon mode, metrics and zero-downtime upgrades. Every test builds
// cmd/pingora, talks to it on 127.0.0.1 only, and bounds every wait.
package ops

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
)

// waitBound bounds every wait of these tests: a process or an event that takes longer is a
// failure, not something to wait for forever.
const waitBound = testbin.Bound

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) { testbin.Main(m) }

// writeConf writes a configuration file into dir.
func writeConf(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "pingora.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// origin is an upstream server in the test process. "/slow" waits until release is closed;
// "/status/404" answers 404; anything else answers 200 "ok".
type origin struct {
	addr     string
	slowSeen chan struct{}
	release  chan struct{}
	srv      *http.Server
}

func startOrigin(t *testing.T) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{addr: ln.Addr().String(), slowSeen: make(chan struct{}, 16), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		o.slowSeen <- struct{}{}
		select {
		case <-o.release:
		case <-time.After(waitBound):
		}
		io.WriteString(w, "slow done")
	})
	mux.HandleFunc("/status/404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go o.srv.Serve(ln)
	t.Cleanup(func() { o.srv.Close() })
	return o
}

// get fetches url with a fresh connection and returns the status and body.
func get(url string) (int, string, error) {
	c := &http.Client{Timeout: waitBound, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// processAlive reports whether pid names a running process that is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitGone waits until pid has exited, at most waitBound.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after %s", pid, waitBound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counter counts outcomes of a load, safely from many goroutines.
type counter struct {
	ok, failed, refused atomic.Int64
	mu                  sync.Mutex
	errs                []string
}

func (c *counter) fail(err error) {
	c.failed.Add(1)
	if isRefused(err) {
		c.refused.Add(1)
	}
	c.mu.Lock()
	if len(c.errs) < 10 {
		c.errs = append(c.errs, err.Error())
	}
	c.mu.Unlock()
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
