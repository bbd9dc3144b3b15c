// Package testbin builds the pingora binary for tests and runs it, or any program, as a child
// process whose standard error is kept and searchable. Every wait is bounded by Bound.
package testbin

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bound bounds every wait of the helpers: a process or an event that takes longer is a test
// failure, not something to wait for forever.
const Bound = 30 * time.Second

// buildBound bounds the build of the binary.
const buildBound = 5 * time.Minute

var build struct {
	once sync.Once
	path string
	err  error
}

// Binary builds cmd/pingora once per test binary and returns its path. A package whose tests
// call it removes the build with Main.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "pingora-testbin")
		if err != nil {
			build.err = err
			return
		}
		bin := filepath.Join(dir, "pingora")
		ctx, cancel := context.WithTimeout(context.Background(), buildBound)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/pingora-go/pingora/cmd/pingora").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		build.path = bin
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Main runs the tests of m, removes the binary Binary built, and exits with the tests' code.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if build.path != "" {
		os.RemoveAll(filepath.Dir(build.path))
	}
	os.Exit(code)
}

// FreeAddr returns a loopback address with a port nobody listened on a moment ago, for a
// process that the test starts to listen on. The port is drawn below the kernel's ephemeral
// range: a port from that range (what listening on port 0 gives) may be taken, before the
// process binds it, as the local port of any outgoing connection on the machine, which
// makes the bind fail for as long as that connection lives.
func FreeAddr(t testing.TB) string {
	t.Helper()
	lo := ephemeralLow()
	for range 100 {
		port := 10000 + rand.IntN(max(lo-10000, 1000))
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			ln.Close()
			return ln.Addr().String()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TCPPair returns both ends of a loopback TCP connection, closed when the test ends.
func TCPPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// ephemeralLow returns the lowest port of the kernel's ephemeral range (32768 when it cannot
// be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= 10000 {
		return 32768
	}
	return lo
}

// WaitListening waits until addr accepts TCP connections, at most Bound.
func WaitListening(t testing.TB, addr string) {
	t.Helper()
	if err := waitListening(addr, nil); err != nil {
		t.Fatal(err)
	}
}

// waitListening dials addr until it answers, Bound passes or exited (if not nil) closes.
func waitListening(addr string, exited <-chan struct{}) error {
	for deadline := time.Now().Add(Bound); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the process exited before listening on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not listening after %s: %v", addr, Bound, err)
		}
	}
}

// Proc is a running process whose standard error is kept line by line. Its standard output is
// discarded. The test that started it kills it at its end if it is still running.
type Proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit error, once done is closed

	mu    sync.Mutex // guards the fields below
	lines []string
	wake  chan struct{} // closed and replaced when a line arrives
}

// Start runs bin with args until the test ends.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{}), wake: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.wake)
			p.wake = make(chan struct{})
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited and its standard error is read to the end.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Log returns the lines of standard error read so far.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// WaitLog waits, at most Bound, until a line of standard error contains all of parts; the
// test fails if the process exits or the bound passes first.
func (p *Proc) WaitLog(parts ...string) { p.WaitLogIn(p.t, parts...) }

// WaitLogIn is WaitLog failing t, for a subtest of the test that started the process (a
// subtest must not fail its parent).
func (p *Proc) WaitLogIn(t testing.TB, parts ...string) {
	t.Helper()
	deadline := time.After(Bound)
	for {
		p.mu.Lock()
		found := p.hasLine(parts)
		wake := p.wake
		p.mu.Unlock()
		if found {
			return
		}
		select {
		case <-wake:
		case <-p.done:
			p.mu.Lock()
			found := p.hasLine(parts)
			p.mu.Unlock()
			if !found {
				t.Fatalf("process exited (%v) before logging %q:\n%s", p.err, parts, p.Log())
			}
			return
		case <-deadline:
			t.Fatalf("no log line with %q after %s:\n%s", parts, Bound, p.Log())
		}
	}
}

// hasLine reports whether a line holds all of parts. p.mu is held.
func (p *Proc) hasLine(parts []string) bool {
	for _, l := range p.lines {
		if containsAll(l, parts) {
			return true
		}
	}
	return false
}

func containsAll(s string, parts []string) bool {
	for _, x := range parts {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// WaitListening waits until each of addrs accepts TCP connections; the test fails with the
// process's log if the process exits or Bound passes first.
func (p *Proc) WaitListening(addrs ...string) {
	p.t.Helper()
	for _, a := range addrs {
		if err := waitListening(a, p.done); err != nil {
			if p.exitedNow() {
				p.t.Fatalf("%v (%v):\n%s", err, p.err, p.Log())
			}
			p.t.Fatalf("%v:\n%s", err, p.Log())
		}
	}
}

func (p *Proc) exitedNow() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit, at most bound, and returns its exit error; the test
// fails if it is still running then.
func (p *Proc) Wait(bound time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(bound):
		p.t.Fatalf("process %d still running after %s:\n%s", p.Pid(), bound, p.Log())
		return nil
	}
}

// Signal sends sig to the process; the test fails if it cannot be sent.
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Stop sends sig to the process unless it has exited and waits, at most Bound, for the exit.
// If the process is still running then, Stop kills it and reports false.
func (p *Proc) Stop(sig syscall.Signal) bool {
	if p.exitedNow() {
		return true
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(Bound):
		p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// Tool returns the path of an installed command, looking in GOPATH/bin too (where `go install`
// puts h2spec). A missing one skips the test, and fails it in CI (CI set), where
// scripts/test.sh installs every tool the tests use.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; scripts/test.sh installs it", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}
