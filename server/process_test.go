package server_test

// Process-level tests of Server.Run: the test binary re-executes itself as a small program
// built on package server (helperMain), and the tests drive it with real signals, real files
// and real TCP connections on 127.0.0.1, as an operator or systemd would.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/server"
)

// Environment of the helper process.
const (
	helperEnv      = "PINGORA_SERVER_TEST_HELPER" // "1": run helperMain instead of the tests
	helperListen   = "PINGORA_SERVER_TEST_LISTEN" // the address of the HTTP service
	helperBGPanics = "PINGORA_SERVER_TEST_BG_PANIC"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		helperMain()
		return
	}
	os.Exit(m.Run())
}

// helperMain is a program on package server as a user would write it: the reference's flags
// and configuration, the error log of the configuration, a listening HTTP service and a
// background service. Its HTTP service answers "/log?m=X" by logging X at info, "/gomaxprocs"
// and "/pid" with those numbers, anything else with "ok".
func helperMain() {
	opt, err := conf.ParseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	c, err := opt.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	logger, lf, err := server.NewLogger(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	slog.SetDefault(logger)
	c.WarnUnknown(logger, opt.Conf)
	o := server.Options{Conf: c, Upgrade: opt.Upgrade, Daemon: opt.Daemon, Logger: logger,
		UpgradeCloseTimeout: 100 * time.Millisecond}
	if lf != nil {
		o.Reopeners = append(o.Reopeners, lf)
	}
	srv := server.New(o)
	if !(c.Daemon || opt.Daemon) || server.IsDaemonChild() {
		mux := http.NewServeMux()
		mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
			logger.Info("hit", "m", r.URL.Query().Get("m"))
			io.WriteString(w, "ok")
		})
		mux.HandleFunc("/gomaxprocs", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strconv.Itoa(runtime.GOMAXPROCS(0)))
		})
		mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strconv.Itoa(os.Getpid()))
		})
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
		ls := server.NewListeningService("helper http", server.NewHTTPApp(mux))
		ls.SetLogger(logger)
		ls.AddTCP(os.Getenv(helperListen))
		srv.AddService(ls)
		srv.AddService(server.NewBackgroundService("ticker", func(ctx context.Context) {
			if os.Getenv(helperBGPanics) == "1" {
				var m map[string]int
				m["boom"]++ // a bug: assignment to a nil map panics
			}
			<-ctx.Done()
		}))
	}
	if err := srv.Run(context.Background()); err != nil {
		logger.Error("helper exits", "error", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startHelper runs the helper process with args, serving HTTP on a free address it returns.
func startHelper(t *testing.T, env []string, args ...string) (*testbin.Proc, string) {
	t.Helper()
	addr := testbin.FreeAddr(t)
	t.Setenv(helperEnv, "1")
	t.Setenv(helperListen, addr)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return testbin.Start(t, os.Args[0], args...), addr
}

// runHelper runs the helper with args to its end, like a service manager's ExecStart of a
// daemon, with the helper environment and addr as its listen address.
func runHelper(t *testing.T, addr string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testbin.Bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperListen+"="+addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper %v: %v\n%s", args, err, out.String())
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// httpGet fetches url on a new connection and returns the body of a 200.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: testbin.Bound, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

func mustGet(t *testing.T, url string) string {
	t.Helper()
	b, err := httpGet(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return b
}

// waitFile waits, at most testbin.Bound, until the file at path holds every one of parts.
func waitFile(t *testing.T, path string, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(testbin.Bound)
	for {
		b, _ := os.ReadFile(path)
		ok := true
		for _, p := range parts {
			ok = ok && bytes.Contains(b, []byte(p))
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lacks %q after %s:\n%s", path, parts, testbin.Bound, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processAlive reports whether pid runs and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(testbin.Bound); processAlive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after %s", pid, testbin.Bound)
		}
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file holds %q", b)
	}
	t.Cleanup(func() {
		if processAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid
}

// TestProcessErrorLogReopen: a JSON error log in the error_log file warns of an unknown key
// with its line; after logrotate's move and SIGUSR1 the process writes to a new file at the
// path, and the moved file keeps what was written before. threads sets GOMAXPROCS.
func TestProcessErrorLogReopen(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "error.log")
	cfg := filepath.Join(dir, "conf.yaml")
	writeFile(t, cfg, fmt.Sprintf("version: 1\nerror_log: %s\nerror_log_format: json\nthreads: 1\nmy_own_key: 3\n", logPath))
	p, addr := startHelper(t, nil, "-c", cfg)
	waitFile(t, logPath, `"msg":"service started"`)
	waitFile(t, logPath, `"msg":"unknown configuration key ignored"`, `"line":5`, `"key":"my_own_key"`)
	if got := mustGet(t, "http://"+addr+"/gomaxprocs"); got != "1" {
		t.Errorf("GOMAXPROCS = %s with threads: 1", got)
	}

	mustGet(t, "http://"+addr+"/log?m=before")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	mustGet(t, "http://"+addr+"/log?m=moved")
	waitFile(t, logPath+".1", `"m":"moved"`)
	p.Signal(syscall.SIGUSR1)
	waitFile(t, logPath, `"msg":"SIGUSR1: log files reopened"`)
	mustGet(t, "http://"+addr+"/log?m=after")
	waitFile(t, logPath, `"m":"after"`)

	p.Signal(syscall.SIGTERM)
	if err := p.Wait(testbin.Bound); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Log())
	}
	old, _ := os.ReadFile(logPath + ".1")
	cur, _ := os.ReadFile(logPath)
	if !bytes.Contains(old, []byte(`"m":"before"`)) || bytes.Contains(old, []byte(`"m":"after"`)) {
		t.Errorf("rotated file:\n%s", old)
	}
	if bytes.Contains(cur, []byte(`"m":"before"`)) || !bytes.Contains(cur, []byte("all services stopped")) {
		t.Errorf("new file:\n%s", cur)
	}
	for _, b := range [][]byte{old, cur} {
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var rec struct{ Time, Level, Msg string }
			if err := json.Unmarshal(line, &rec); err != nil || rec.Time == "" || rec.Level == "" || rec.Msg == "" {
				t.Errorf("not a JSON log record with time, level and msg: %s (%v)", line, err)
			}
		}
	}
}

// TestProcessBackgroundPanic: a panic in a background service is logged with its stack and the
// process goes on serving; SIGTERM still stops it with status 0.
func TestProcessBackgroundPanic(t *testing.T) {
	p, addr := startHelper(t, []string{helperBGPanics + "=1"})
	p.WaitLog("background service panicked", `service="BG ticker"`, "assignment to entry in nil map", "stack=")
	p.WaitLog("service started", "helper http")
	if got := mustGet(t, "http://"+addr+"/"); got != "ok" {
		t.Fatalf("after the panic: %q", got)
	}
	p.Signal(syscall.SIGTERM)
	if err := p.Wait(testbin.Bound); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Log())
	}
}

// TestProcessSystemdReload runs the sequence of dist/systemd/pingora.service: ExecStart starts
// a daemon with -d and returns once it serves; ExecReload sends SIGQUIT to the main pid, then
// starts a new daemon with -u -d, which takes the listening sockets over and writes its pid
// into pid_file; the old one drains and exits; ExecStop's SIGTERM stops the new one, which
// removes the pid file. No request of a load running across the reload fails.
func TestProcessSystemdReload(t *testing.T) {
	dir := t.TempDir()
	pidFile, logPath := filepath.Join(dir, "pingora.pid"), filepath.Join(dir, "error.log")
	cfg := filepath.Join(dir, "conf.yaml")
	writeFile(t, cfg, fmt.Sprintf("version: 1\ndaemon: true\npid_file: %s\nerror_log: %s\nupgrade_sock: %s\ngrace_period_seconds: 10\n",
		pidFile, logPath, filepath.Join(dir, "upgrade.sock")))
	addr := testbin.FreeAddr(t)

	runHelper(t, addr, "-d", "-c", cfg) // ExecStart: returns once the daemon serves
	pid1 := readPid(t, pidFile)
	if got := mustGet(t, "http://"+addr+"/pid"); got != strconv.Itoa(pid1) {
		t.Fatalf("served by pid %s, pid file says %d", got, pid1)
	}

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := httpGet("http://" + addr + "/"); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// ExecReload.
	if err := syscall.Kill(pid1, syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	runHelper(t, addr, "-u", "-d", "-c", cfg)
	pid2 := readPid(t, pidFile)
	if pid2 == pid1 || !processAlive(pid2) {
		t.Fatalf("pid file holds %d after the reload (old %d)", pid2, pid1)
	}
	waitGone(t, pid1)
	if got := mustGet(t, "http://"+addr+"/pid"); got != strconv.Itoa(pid2) {
		t.Fatalf("served by pid %s after the reload, want %d", got, pid2)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("across the reload: %d ok, %d failed (first: %v)", ok.Load(), failed.Load(), firstErr.Load())
	}
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("the old daemon removed the new one's pid file: %v", err)
	}

	// ExecStop.
	if err := syscall.Kill(pid2, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid2)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	waitFile(t, logPath, "listening sockets handed over", "listening on an inherited socket", "SIGTERM: graceful shutdown")
	t.Logf("%d requests across the reload, none failed", ok.Load())
}

// TestSystemdUnit checks that dist/systemd/pingora.service runs the sequence
// TestProcessSystemdReload tests, and that its PIDFile is the pid_file of the example
// configuration next to it.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../dist/systemd/pingora.service")
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string][]string{}
	for _, line := range strings.Split(string(unit), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		kv[k] = append(kv[k], v)
	}
	const bin, cfgPath = "/usr/local/bin/pingora", "/etc/pingora/conf.yaml"
	want := map[string][]string{
		"Type":       {"forking"},
		"ExecStart":  {bin + " -d -c " + cfgPath},
		"ExecReload": {bin + " -t -c " + cfgPath, "/bin/kill -QUIT $MAINPID", bin + " -u -d -c " + cfgPath},
		"KillSignal": {"SIGTERM"},
	}
	for k, v := range want {
		if !slices.Equal(kv[k], v) {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
	// Read the example's keys without conf.Load, whose check of user and group depends on
	// the accounts of the machine.
	data, err := os.ReadFile("../dist/systemd/conf.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := conf.Default()
	if err := yaml.Unmarshal(data, c); err != nil {
		t.Fatal(err)
	}
	if pf := kv["PIDFile"]; len(pf) != 1 || pf[0] != c.PidFile {
		t.Errorf("PIDFile = %q, the configuration's pid_file is %q", pf, c.PidFile)
	}
	stop := kv["TimeoutStopSec"]
	if n, err := strconv.Atoi(strings.Join(stop, "")); err != nil || n <= c.GracePeriodSeconds+c.GracefulShutdownTimeoutSeconds {
		t.Errorf("TimeoutStopSec = %q, want more than grace_period_seconds + graceful_shutdown_timeout_seconds (%d)",
			stop, c.GracePeriodSeconds+c.GracefulShutdownTimeoutSeconds)
	}
}
