package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/conf"
)

// logRecorder is a slog handler that keeps the messages it receives.
type logRecorder struct {
	mu   sync.Mutex // guards msgs
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	return nil
}

// count returns how many messages contain s.
func (r *logRecorder) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

// startLineService runs a server (configuration c, nil for the defaults) with one line-echo
// service on a free loopback port, both logging to a recorder, and returns them with the
// service's address and startServer's channel.
func startLineService(t *testing.T, name string, c *conf.ServerConf, o AcceptOptions) (*Server, *ListeningService, *logRecorder, string, <-chan error) {
	t.Helper()
	rec := &logRecorder{}
	lg := slog.New(rec)
	srv := New(Options{Conf: c, Logger: lg})
	ls := NewListeningService(name, newLineApp())
	ls.SetLogger(lg)
	ls.SetAcceptOptions(o)
	ls.AddTCP("127.0.0.1:0")
	srv.AddService(ls)
	addr, done := startServer(t, srv, ls)
	return srv, ls, rec, addr, done
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

// send writes line and a newline on c.
func send(t *testing.T, c net.Conn, line string) {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
}

// echoed reports whether "echo: line" came back on r within wait; anything else fails t.
func echoed(t *testing.T, c net.Conn, r *bufio.Reader, line string, wait time.Duration) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	got, err := r.ReadString('\n')
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && got == "" {
			return false
		}
		t.Fatalf("read the echo of %q: %v (got %q)", line, err, got)
	}
	if got != "echo: "+line+"\n" {
		t.Fatalf("got %q, want the echo of %q", got, line)
	}
	return true
}

// waitFor polls cond every millisecond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMaxConnsPausesAccept(t *testing.T) {
	const max, extra = 3, 2
	cases := []struct {
		name string
		conf func(*conf.ServerConf)
		opts AcceptOptions
	}{
		{"AcceptOptions", func(*conf.ServerConf) {}, AcceptOptions{MaxConns: max}},
		{"max_downstream_connections", func(c *conf.ServerConf) { c.MaxDownstreamConnections = max }, AcceptOptions{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := conf.Default()
			tc.conf(c)
			_, ls, rec, addr, _ := startLineService(t, "limited", c, tc.opts)

			type client struct {
				c net.Conn
				r *bufio.Reader
			}
			var first []client
			for i := range max {
				c, r := dialLine(t, addr, fmt.Sprint("first ", i))
				if !echoed(t, c, r, fmt.Sprint("first ", i), 5*time.Second) {
					t.Fatalf("connection %d within the limit was not served", i)
				}
				first = append(first, client{c, r})
			}
			// The extra connections are established by the kernel but not accepted: their
			// lines get no answer, and they are not refused either.
			var waiting []client
			for i := range extra {
				c, r := dialLine(t, addr, fmt.Sprint("extra ", i))
				waiting = append(waiting, client{c, r})
			}
			for i, w := range waiting {
				if echoed(t, w.c, w.r, fmt.Sprint("extra ", i), 300*time.Millisecond) {
					t.Fatalf("extra connection %d was served beyond the limit", i)
				}
			}
			if n := ls.Conns(); n != max {
				t.Fatalf("service holds %d connections, want %d", n, max)
			}
			// The old connections are still served while accepting is paused.
			send(t, first[extra].c, "still here")
			if !echoed(t, first[extra].c, first[extra].r, "still here", 5*time.Second) {
				t.Fatal("a held connection stopped being served")
			}
			for _, f := range first[:extra] {
				f.c.Close()
			}
			for i, w := range waiting {
				if !echoed(t, w.c, w.r, fmt.Sprint("extra ", i), 5*time.Second) {
					t.Fatalf("extra connection %d was not served after others closed", i)
				}
			}
			waitFor(t, "the connection count", func() bool { return ls.Conns() == max })
			if n := rec.count("connection limit reached"); n != 1 {
				t.Errorf("%d log lines about the limit, want 1 (rate-limited):\n%s", n, rec)
			}
		})
	}
}

func TestConnGate(t *testing.T) {
	g := &connGate{max: 2}
	done := make(chan struct{})
	pauses := 0
	paused := func() { pauses++ }
	if !g.acquire(done, paused) || !g.acquire(done, paused) {
		t.Fatal("free slots were not granted")
	}
	got := make(chan bool)
	go func() { got <- g.acquire(done, func() {}) }()
	select {
	case <-got:
		t.Fatal("a third slot was granted at the maximum")
	case <-time.After(50 * time.Millisecond):
	}
	g.release()
	if !<-got {
		t.Fatal("a released slot was not granted")
	}
	go func() { got <- g.acquire(done, func() {}) }()
	close(done)
	if <-got {
		t.Fatal("acquire succeeded after done ended, with no free slot")
	}
	if pauses != 0 {
		t.Fatalf("paused called %d times without waiting", pauses)
	}
	unlimited := &connGate{max: -1}
	for range 1000 {
		if !unlimited.acquire(done, paused) {
			t.Fatal("an unlimited gate refused")
		}
	}
}

func TestAcceptBackoffAndLogRate(t *testing.T) {
	rec := &logRecorder{}
	l := &acceptLog{logger: slog.New(rec), service: "svc", interval: time.Hour}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	var delays []time.Duration
	for range 10 {
		delays = append(delays, l.failed(emfile, 300*time.Millisecond))
	}
	want := []time.Duration{10, 20, 40, 80, 160, 300, 300, 300, 300, 300}
	for i, d := range delays {
		if d != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", delays, want)
		}
	}
	if n := rec.count("out of file descriptors"); n != 1 {
		t.Fatalf("%d lines for 10 failures within the interval, want 1:\n%s", n, rec)
	}
	l.interval = 0 // the next line is due at once
	l.failed(errors.New("other"), time.Second)
	if n := rec.count("not_logged=9"); n != 1 {
		t.Fatalf("the next line does not count the 9 left out:\n%s", rec)
	}
	l.succeeded()
	if n := rec.count("accepting again service=svc failed_accepts=11"); n != 1 {
		t.Fatalf("no recovery line:\n%s", rec)
	}
	if d := l.failed(emfile, time.Second); d != 10*time.Millisecond {
		t.Fatalf("backoff after a success starts at %v, want 10ms", d)
	}
}

func TestDefaultMaxConns(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	want := max((int(rl.Cur)-ReservedFiles)/2, 1)
	if got := DefaultMaxConns(); got != want {
		t.Fatalf("DefaultMaxConns() = %d with a soft limit of %d, want %d", got, rl.Cur, want)
	}
}

// fdChildEnv names the scenario a re-executed test binary runs with a low RLIMIT_NOFILE.
const fdChildEnv = "PINGORA_SERVER_FD_CHILD"

// TestFileDescriptorLimit runs scenarios in a child process (this test binary again) whose
// RLIMIT_NOFILE is lowered to a few descriptors above what it has open, so that the other
// tests keep the normal limit.
func TestFileDescriptorLimit(t *testing.T) {
	if sc := os.Getenv(fdChildEnv); sc != "" {
		switch sc {
		case "emfile":
			childEMFILE(t)
		case "default-limit":
			childDefaultLimit(t)
		default:
			t.Fatalf("unknown scenario %q", sc)
		}
		return
	}
	for _, sc := range []string{"emfile", "default-limit"} {
		t.Run(sc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFileDescriptorLimit$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), fdChildEnv+"="+sc)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestFileDescriptorLimit") {
				t.Fatalf("child %s: %v\n%s", sc, err, out)
			}
			t.Logf("child %s:\n%s", sc, out)
		})
	}
}

// lowerFileLimit sets the soft RLIMIT_NOFILE to the descriptors open now plus room.
func lowerFileLimit(t *testing.T, room int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = uint64(len(ents) + room)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d descriptors open; RLIMIT_NOFILE lowered to %d", len(ents), rl.Cur)
	return int(rl.Cur)
}

// fillDescriptors opens /dev/null until the process is out of descriptors and returns the
// files.
func fillDescriptors(t *testing.T) []*os.File {
	t.Helper()
	var files []*os.File
	for range 10000 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			return files
		}
		files = append(files, f)
	}
	t.Fatal("the descriptor limit was not reached")
	return nil
}

// childEMFILE: with no connection limit, accepts fail with EMFILE; the server logs once,
// keeps serving the connections it has, and accepts the waiting client once descriptors are
// free again.
func childEMFILE(t *testing.T) {
	lowerFileLimit(t, 24)
	_, _, rec, addr, _ := startLineService(t, "fd-starved", nil,
		AcceptOptions{MaxConns: -1, MaxBackoff: 50 * time.Millisecond, LogInterval: time.Hour})

	old, oldR := dialLine(t, addr, "before")
	if !echoed(t, old, oldR, "before", 5*time.Second) {
		t.Fatal("the first connection was not served")
	}
	files := fillDescriptors(t)
	// Free one descriptor for the client's socket: the server's accept has none left.
	files[len(files)-1].Close()
	files = files[:len(files)-1]
	late, lateR := dialLine(t, addr, "late")
	waitFor(t, "a failed accept", func() bool { return rec.count("out of file descriptors") > 0 })
	// Let the loop fail many more times: the log says so once per interval.
	time.Sleep(500 * time.Millisecond)
	if echoed(t, late, lateR, "late", 10*time.Millisecond) {
		t.Fatal("the late client was served without a descriptor")
	}
	send(t, old, "during")
	if !echoed(t, old, oldR, "during", 5*time.Second) {
		t.Fatal("an existing connection stopped being served while out of descriptors")
	}
	if n := rec.count("out of file descriptors"); n != 1 {
		t.Fatalf("%d lines about failed accepts, want 1:\n%s", n, rec)
	}
	for _, f := range files {
		f.Close()
	}
	if !echoed(t, late, lateR, "late", 5*time.Second) {
		t.Fatalf("the late client was not served after descriptors were freed:\n%s", rec)
	}
	fresh, freshR := dialLine(t, addr, "after")
	if !echoed(t, fresh, freshR, "after", 5*time.Second) {
		t.Fatal("a new client was not served after the recovery")
	}
	if rec.count("accepting again") != 1 {
		t.Fatalf("no recovery line:\n%s", rec)
	}
}

// childDefaultLimit: with the default limit, derived from the low RLIMIT_NOFILE, the service
// stops accepting before it runs out of descriptors, and resumes when connections close.
func childDefaultLimit(t *testing.T) {
	limit := lowerFileLimit(t, 48)
	want := (limit - ReservedFiles) / 2
	if DefaultMaxConns() != want {
		t.Fatalf("DefaultMaxConns() = %d, want %d", DefaultMaxConns(), want)
	}
	_, _, rec, addr, _ := startLineService(t, "default-limit", nil, AcceptOptions{})
	type client struct {
		c net.Conn
		r *bufio.Reader
	}
	var clients []client
	for i := range want + 3 {
		c, r := dialLine(t, addr, fmt.Sprint("c", i))
		clients = append(clients, client{c, r})
	}
	for i := range want {
		if !echoed(t, clients[i].c, clients[i].r, fmt.Sprint("c", i), 5*time.Second) {
			t.Fatalf("connection %d within the default limit %d was not served", i, want)
		}
	}
	for i, c := range clients[want:] {
		if echoed(t, c.c, c.r, fmt.Sprint("c", want+i), 200*time.Millisecond) {
			t.Fatalf("a connection beyond the default limit %d was served", want)
		}
	}
	for _, c := range clients[:3] {
		c.c.Close()
	}
	for i, c := range clients[want:] {
		if !echoed(t, c.c, c.r, fmt.Sprint("c", want+i), 5*time.Second) {
			t.Fatal("a waiting connection was not served after others closed")
		}
	}
	if n := rec.count("accept failed"); n != 0 {
		t.Fatalf("accepts failed although the limit should keep descriptors free:\n%s", rec)
	}
	if rec.count("connection limit reached") != 1 {
		t.Fatalf("no line about the limit:\n%s", rec)
	}
}

// TestFastShutdownNoConnectionsNoWarning: a fast shutdown of a service holding no connection
// does not warn about closing connections in flight. Its shutdown and kill come together, so
// the wait for the connections' goroutines and the kill were both ready at once, and the
// warning (with a count of 0) came about every other time: twenty shutdowns in a row.
func TestFastShutdownNoConnectionsNoWarning(t *testing.T) {
	for i := range 20 {
		srv, ls, rec, addr, done := startLineService(t, "idle", nil, AcceptOptions{})
		c, r := dialLine(t, addr, "one")
		if !echoed(t, c, r, "one", 5*time.Second) {
			t.Fatal("not served")
		}
		c.Close()
		waitFor(t, "the connection to end", func() bool { return ls.Conns() == 0 })
		srv.Shutdown(false)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not stop")
		}
		if n := rec.count("closing connections still in flight"); n != 0 {
			t.Fatalf("shutdown %d: warned about closing connections with none open:\n%s", i, rec)
		}
	}
}
