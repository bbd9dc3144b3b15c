package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingora-go/pingora/listeners"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// lineApp answers each line it reads with "echo: line"; the line "block" waits until release
// is closed or the connection is closed; "panic" panics.
type lineApp struct {
	release chan struct{}
	entered chan struct{}
}

func newLineApp() *lineApp {
	return &lineApp{release: make(chan struct{}), entered: make(chan struct{}, 8)}
}

func (a *lineApp) ServeConn(shutdown context.Context, c net.Conn) {
	defer c.Close()
	// Like the proxy, wake the connection when it waits for a line during a shutdown.
	stop := context.AfterFunc(shutdown, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch strings.TrimSpace(line) {
		case "block":
			a.entered <- struct{}{}
			<-a.release
		case "panic":
			panic("test panic")
		}
		if _, err := io.WriteString(c, "echo: "+line); err != nil {
			return
		}
		if shutdown.Err() != nil {
			return
		}
	}
}

// startServer runs srv in the background and returns its listening address and the channel
// RunServices' result arrives on.
func startServer(t *testing.T, srv *Server, ls *ListeningService) (string, <-chan error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(ls.Addrs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("service did not start")
		}
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() { srv.Shutdown(false) })
	return ls.Addrs()[0].String(), done
}

func dialLine(t *testing.T, addr, line string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, line+"\n")
	return c, bufio.NewReader(c)
}

func TestShutdown(t *testing.T) {
	cases := []struct {
		name     string
		graceful bool
		grace    time.Duration
		wantDone bool // the blocked exchange completes
	}{
		{"graceful lets the request finish", true, time.Minute, true},
		{"fast cuts it", false, time.Minute, false},
		{"grace period over cuts it", true, -1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := newLineApp()
			ls := NewListeningService("test", app)
			ls.SetLogger(quiet)
			ls.AddTCP("127.0.0.1:0")
			srv := New(Options{GracePeriod: tc.grace, Logger: quiet})
			srv.AddService(ls)
			addr, done := startServer(t, srv, ls)
			_, r := dialLine(t, addr, "block")
			<-app.entered
			srv.Shutdown(tc.graceful)
			if tc.wantDone {
				// No new connection is accepted once shutdown began.
				waitRefused(t, addr)
				close(app.release)
			}
			line, err := r.ReadString('\n')
			if !tc.wantDone {
				close(app.release)
			}
			if got := err == nil && line == "echo: block\n"; got != tc.wantDone {
				t.Errorf("exchange completed = %v (%q, %v), want %v", got, line, err, tc.wantDone)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting after shutdown")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConnectionPanicIsContained(t *testing.T) {
	app := newLineApp()
	ls := NewListeningService("test", app)
	ls.SetLogger(quiet)
	ls.AddTCP("127.0.0.1:0")
	srv := New(Options{Logger: quiet})
	srv.AddService(ls)
	addr, done := startServer(t, srv, ls)
	_, r := dialLine(t, addr, "panic")
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("the panicking connection answered")
	}
	_, r = dialLine(t, addr, "hello")
	if line, err := r.ReadString('\n'); err != nil || line != "echo: hello\n" {
		t.Fatalf("after a panic: %q %v", line, err)
	}
	srv.Shutdown(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBackgroundService(t *testing.T) {
	t.Run("stops with the server", func(t *testing.T) {
		var ran atomic.Bool
		started := make(chan struct{})
		srv := New(Options{Logger: quiet})
		srv.AddService(NewBackgroundService("ticker", func(ctx context.Context) {
			ran.Store(true)
			close(started)
			<-ctx.Done()
		}))
		done := make(chan error, 1)
		go func() { done <- srv.RunServices(context.Background()) }()
		<-started
		srv.Shutdown(true)
		if err := <-done; err != nil || !ran.Load() {
			t.Fatalf("err %v ran %v", err, ran.Load())
		}
	})
	t.Run("panic is contained and logged", func(t *testing.T) {
		var logged syncBuffer
		srv := New(Options{Logger: quiet})
		panicked := make(chan struct{})
		bg := NewBackgroundService("bad", func(context.Context) {
			defer close(panicked)
			panic("boom")
		})
		bg.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
		if bg.Name() != "BG bad" {
			t.Errorf("name %q", bg.Name())
		}
		app := newLineApp()
		ls := NewListeningService("test", app)
		ls.SetLogger(quiet)
		ls.AddTCP("127.0.0.1:0")
		srv.AddService(bg)
		srv.AddService(ls)
		addr, done := startServer(t, srv, ls)
		<-panicked
		// The listening service goes on serving after the background service panicked.
		_, r := dialLine(t, addr, "still serving")
		if line, err := r.ReadString('\n'); err != nil || line != "echo: still serving\n" {
			t.Fatalf("after the panic: %q %v", line, err)
		}
		select {
		case err := <-done:
			t.Fatalf("the server stopped after a background service panicked: %v", err)
		default:
		}
		for _, want := range []string{"level=ERROR", "background service panicked", "service=\"BG bad\"", "panic=boom", "stack="} {
			if !strings.Contains(logged.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logged.String())
			}
		}
		srv.Shutdown(true)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// panicService panics in Serve.
type panicService struct{}

func (panicService) Name() string                     { return "panicky" }
func (panicService) Start(context.Context) error      { return nil }
func (panicService) Serve(_, _ context.Context) error { panic("serve panic") }

func TestServicePanicStopsServer(t *testing.T) {
	srv := New(Options{Logger: quiet})
	srv.AddService(panicService{})
	srv.AddService(NewBackgroundService("waits", func(ctx context.Context) { <-ctx.Done() }))
	err := srv.RunServices(context.Background())
	if err == nil || !strings.Contains(err.Error(), "serve panic") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ls := NewListeningService("test", newLineApp())
	ls.SetLogger(quiet)
	ls.AddUDS(filepath.Join(t.TempDir(), "no-such-dir", "x.sock"), 0)
	srv := New(Options{Logger: quiet})
	srv.AddService(ls)
	if err := srv.RunServices(context.Background()); err == nil {
		t.Fatal("start of an unbindable address succeeded")
	}
}

// TestUpgradeHandOver hands the listener of a running server to a second server through the
// upgrade socket; the first stops, the second serves on the same address.
func TestUpgradeHandOver(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "upgrade.sock")
	app := newLineApp()
	old := NewListeningService("test", app)
	old.SetLogger(quiet)
	old.AddTCP("127.0.0.1:0")
	cfgOld := New(Options{Logger: quiet, UpgradeCloseTimeout: time.Millisecond}).Conf()
	cfgOld.UpgradeSock = sock
	oldSrv := New(Options{Conf: cfgOld, Logger: quiet, UpgradeCloseTimeout: time.Millisecond})
	oldSrv.AddService(old)
	addr, oldDone := startServer(t, oldSrv, old)

	fds := make(chan map[string]*os.File, 1)
	go func() {
		m, err := listeners.ReceiveFds(sock, 5)
		if err != nil {
			t.Error(err)
		}
		fds <- m
	}()
	oldSrv.upgrade()
	if err := <-oldDone; err != nil {
		t.Fatal(err)
	}

	next := NewListeningService("test", app)
	next.SetLogger(quiet)
	next.AddTCP("127.0.0.1:0")
	newSrv := New(Options{Logger: quiet})
	newSrv.inherited = <-fds
	newSrv.AddService(next)
	newAddr, newDone := startServer(t, newSrv, next)
	if newAddr != addr {
		t.Fatalf("new server listens on %s, want the inherited %s", newAddr, addr)
	}
	_, r := dialLine(t, addr, "after upgrade")
	if line, err := r.ReadString('\n'); err != nil || line != "echo: after upgrade\n" {
		t.Fatalf("%q %v", line, err)
	}
	newSrv.Shutdown(true)
	if err := <-newDone; err != nil {
		t.Fatal(err)
	}
}

func TestUpgradeWithoutReceiverKeepsServing(t *testing.T) {
	app := newLineApp()
	ls := NewListeningService("test", app)
	ls.SetLogger(quiet)
	ls.AddTCP("127.0.0.1:0")
	c := New(Options{}).Conf()
	c.UpgradeSock = filepath.Join(t.TempDir(), "nobody.sock")
	c.UpgradeSockConnectAcceptMaxRetries = 0
	srv := New(Options{Conf: c, Logger: quiet})
	srv.AddService(ls)
	addr, done := startServer(t, srv, ls)
	srv.upgrade()
	_, r := dialLine(t, addr, "still here")
	if line, err := r.ReadString('\n'); err != nil || line != "echo: still here\n" {
		t.Fatalf("%q %v", line, err)
	}
	srv.Shutdown(true)
	<-done
}

func TestHTTPApp(t *testing.T) {
	ls := NewListeningService("http", NewHTTPApp(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "path "+r.URL.Path)
	})))
	ls.SetLogger(quiet)
	ls.AddTCP("127.0.0.1:0")
	srv := New(Options{Logger: quiet})
	srv.AddService(ls)
	addr, done := startServer(t, srv, ls)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, p := range []string{"/a", "/metrics"} {
		resp, err := client.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "path "+p {
			t.Errorf("%s: %q", p, b)
		}
	}
	// The keep-alive connection the client holds must not delay the shutdown.
	srv.Shutdown(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "error.log")
	lf, err := OpenLogFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	io.WriteString(lf, "one\n")
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	io.WriteString(lf, "two\n")
	if err := lf.Reopen(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(lf, "three\n")
	for file, want := range map[string]string{p + ".1": "one\ntwo\n", p: "three\n"} {
		b, _ := os.ReadFile(file)
		if string(b) != want {
			t.Errorf("%s = %q, want %q", file, b, want)
		}
	}
}

func TestPidFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "run", "x.pid")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("12345\n"), 0o644)
	pf, err := writePidFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p + ".old"); string(b) != "12345\n" {
		t.Errorf("old pid file %q", b)
	}
	// A newer process took the pid file over: it stays.
	os.WriteFile(p, []byte("999999\n"), 0o644)
	pf.remove()
	if _, err := os.Stat(p); err != nil {
		t.Fatal("removed another process's pid file")
	}
	pf, err = writePidFile(p)
	if err != nil {
		t.Fatal(err)
	}
	pf.remove()
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("own pid file not removed: %v", err)
	}
}

func TestDropPrivilegesWithoutRoot(t *testing.T) {
	if err := dropPrivileges("", "", nil); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		t.Skip("the refusal to switch user without root is only observable as non-root; the switch itself is tested by e2e/ops as root")
	}
	if err := dropPrivileges("root", "", nil); err == nil {
		t.Fatal("switched to root without privileges")
	}
}

func TestNewLogger(t *testing.T) {
	cases := []struct {
		name, level, format string
		want, notWant       []string
	}{
		{"defaults: text at info", "", "", []string{"level=INFO msg=shown k=v", "level=WARN msg=warned"}, []string{"msg=hidden"}},
		{"json at warn", "warn", "json", []string{`"level":"WARN","msg":"warned"`}, []string{"shown", "hidden"}},
		{"debug", "debug", "text", []string{"level=DEBUG msg=hidden", "level=INFO msg=shown"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Options{}).Conf()
			c.ErrorLog = filepath.Join(t.TempDir(), "error.log")
			c.ErrorLogLevel, c.ErrorLogFormat = tc.level, tc.format
			l, lf, err := NewLogger(c)
			if err != nil {
				t.Fatal(err)
			}
			if lf == nil {
				t.Fatal("no LogFile to reopen for an error_log file")
			}
			defer lf.Close()
			l.Debug("hidden")
			l.Info("shown", "k", "v")
			l.Warn("warned")
			b, _ := os.ReadFile(c.ErrorLog)
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("log lacks %q:\n%s", w, b)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(b), w) {
					t.Errorf("log has %q:\n%s", w, b)
				}
			}
		})
	}
	c := New(Options{}).Conf()
	if _, lf, err := NewLogger(c); err != nil || lf != nil {
		t.Errorf("stderr logger: file %v, error %v", lf, err)
	}
	c.ErrorLogLevel = "loud"
	if _, _, err := NewLogger(c); err == nil {
		t.Error("an unknown level was accepted")
	}
}
