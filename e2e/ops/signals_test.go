package ops

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
)

// TestSIGTERMGraceful: a slow request in flight when SIGTERM arrives completes; new
// connections are refused once the server logged that it stopped accepting; the process exits
// with status 0 within the grace period.
func TestSIGTERMGraceful(t *testing.T) {
	bin := testbin.Binary(t)
	o := startOrigin(t)
	addr := testbin.FreeAddr(t)
	const grace = 20 * time.Second
	cfg := writeConf(t, t.TempDir(), "version: 1\ngrace_period_seconds: 20\n")
	p := testbin.Start(t, bin, "-c", cfg, "--listen", addr, "--upstream", o.addr)
	p.WaitLog("service started")

	type result struct {
		status int
		body   string
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		s, b, err := get("http://" + addr + "/slow")
		slow <- result{s, b, err}
	}()
	select {
	case <-o.slowSeen:
	case <-time.After(waitBound):
		t.Fatal("the slow request never reached the origin")
	}
	p.Signal(syscall.SIGTERM)
	p.WaitLog("stopped accepting")
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Fatal("a new connection was accepted after the graceful shutdown began")
	} else if !isRefused(err) {
		t.Fatalf("dial after shutdown: %v, want connection refused", err)
	}
	close(o.release)
	r := <-slow
	if r.err != nil || r.status != 200 || r.body != "slow done" {
		t.Fatalf("slow request: %d %q %v, want 200 \"slow done\"", r.status, r.body, r.err)
	}
	if err := p.Wait(grace); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Log())
	}
}

// TestSIGINTFast: SIGINT cuts the request in flight and the process exits at once.
func TestSIGINTFast(t *testing.T) {
	bin := testbin.Binary(t)
	o := startOrigin(t)
	defer close(o.release)
	addr := testbin.FreeAddr(t)
	p := testbin.Start(t, bin, "--listen", addr, "--upstream", o.addr)
	p.WaitLog("service started")
	slow := make(chan error, 1)
	go func() {
		_, _, err := get("http://" + addr + "/slow")
		slow <- err
	}()
	<-o.slowSeen
	p.Signal(syscall.SIGINT)
	if err := p.Wait(waitBound); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Log())
	}
	if err := <-slow; err == nil {
		t.Fatal("the request in flight completed; a fast shutdown must cut it")
	}
	// Not waiting is what a fast shutdown asks for: it is not a warning.
	if strings.Contains(p.Log(), "leaving them") {
		t.Fatalf("fast shutdown warned about services left running:\n%s", p.Log())
	}
}
