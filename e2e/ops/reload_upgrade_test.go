package ops

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
	"golang.org/x/sys/unix"
)

const reloadConf = `version: 1
upgrade_sock: %s
grace_period_seconds: 20
listeners:
%s
upstreams:
  app:
    backends: [%s]
services:
  web:
    routes:
      - upstream: app
`

// TestReloadUpgradesForListeners: a reload (SIGHUP) of a file that adds a listener and removes
// another makes the binary (--reload-upgrade) start a new process on the new file and hand it
// the listening sockets, under a continuous load on the listener both files have: no request
// fails, no connection is refused, the old process exits, the new one serves the added
// listener and closed the removed one. A second reload with a broken listener (an address in
// use) leaves the running process serving.
func TestReloadUpgradesForListeners(t *testing.T) {
	bin := testbin.Binary(t)
	o := startOrigin(t)
	dir := t.TempDir()
	kept, removed, added := testbin.FreeAddr(t), testbin.FreeAddr(t), testbin.FreeAddr(t)
	sock := filepath.Join(dir, "upgrade.sock")
	write := func(addrs ...string) string {
		ls := ""
		for _, a := range addrs {
			ls += "  - address: " + a + "\n"
		}
		// A short ready timeout: the failing upgrade below waits for it.
		return writeConf(t, dir, "daemon_ready_timeout_seconds: 5\n"+fmt.Sprintf(reloadConf, sock, ls, o.addr))
	}
	cfg := write(kept, removed)
	cur := testbin.Start(t, bin, "-c", cfg, "--reload-upgrade")
	cur.WaitListening(kept, removed)

	c, stop := startLoad(t, kept, 6)
	waitRequests(t, c, 200)

	write(kept, added)
	cur.Signal(syscall.SIGHUP)
	cur.WaitLog("self-upgrade: the new process serves")
	m := regexp.MustCompile(`self-upgrade: new process started.*pid=(\d+)`).FindStringSubmatch(cur.Log())
	if m == nil {
		t.Fatalf("no pid of the new process in the log:\n%s", cur.Log())
	}
	pid, _ := strconv.Atoi(m[1])
	// The new process is not a child of the test: stop it by its pid at the end.
	t.Cleanup(func() {
		if processAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The new process writes to the old one's standard error, which the test reads: wait for
	// the old process by its pid, not for the end of that stream.
	waitGone(t, cur.Pid())
	waitRequests(t, c, 200)
	if status, body, err := get("http://" + added + "/new"); err != nil || status != 200 || body != "ok" {
		t.Fatalf("the added listener does not serve: %d %q %v", status, body, err)
	}
	if _, _, err := get("http://" + removed + "/"); err == nil || !isRefused(err) {
		t.Fatalf("the removed listener still answers: %v", err)
	}

	// A file whose new listener cannot be bound: the new process fails, this one goes on.
	busy := testbin.FreeAddr(t)
	holder, err := net.Listen("tcp", busy)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	write(kept, added, busy)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	cur.WaitLog("self-upgrade aborted; still serving", "was not ready")
	waitRequests(t, c, 200)
	stop()
	t.Logf("%d requests succeeded, %d failed, %d refused", c.ok.Load(), c.failed.Load(), c.refused.Load())
	if c.failed.Load() != 0 || c.refused.Load() != 0 {
		t.Fatalf("%d failed requests (%d refused connections); first errors: %v", c.failed.Load(), c.refused.Load(), c.errs)
	}
	if !processAlive(pid) {
		t.Fatal("the serving process exited after a failed upgrade")
	}
	syscall.Kill(pid, syscall.SIGTERM)
	waitGone(t, pid)
	if _, err := os.Stat(sock); err == nil {
		t.Logf("upgrade socket left at %s", sock)
	}
}

// TestDaemonReloadUpgrades: a daemon (-d) upgrades itself when a reload adds a listener, with
// no flag: the new daemon writes its pid into pid_file, leads its own session, serves both
// listeners, and the old one exits.
func TestDaemonReloadUpgrades(t *testing.T) {
	bin := testbin.Binary(t)
	o := startOrigin(t)
	dir := t.TempDir()
	first, second := testbin.FreeAddr(t), testbin.FreeAddr(t)
	pidFile, errLog := filepath.Join(dir, "pingora.pid"), filepath.Join(dir, "error.log")
	head := fmt.Sprintf("pid_file: %s\nerror_log: %s\n", pidFile, errLog)
	write := func(addrs ...string) string {
		ls := ""
		for _, a := range addrs {
			ls += "  - address: " + a + "\n"
		}
		return writeConf(t, dir, head+fmt.Sprintf(reloadConf, filepath.Join(dir, "upgrade.sock"), ls, o.addr))
	}
	cfg := write(first)
	old := runDaemon(t, bin, cfg, pidFile)
	write(first, second)
	if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * waitBound)
	for processAlive(old) {
		if time.Now().After(deadline) {
			logged, _ := os.ReadFile(errLog)
			t.Fatalf("the old daemon %d still runs after the reload\n%s", old, logged)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == old || !processAlive(pid) {
		logged, _ := os.ReadFile(errLog)
		t.Fatalf("pid file holds %d (old %d), not a running new daemon\n%s", pid, old, logged)
	}
	t.Cleanup(func() {
		if processAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Errorf("new daemon's session %d, want its own (%d)", sid, pid)
	}
	for _, a := range []string{first, second} {
		if status, body, err := get("http://" + a + "/"); err != nil || status != 200 || body != "ok" {
			t.Fatalf("%s: %d %q %v", a, status, body, err)
		}
	}
	syscall.Kill(pid, syscall.SIGTERM)
	waitGone(t, pid)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}
