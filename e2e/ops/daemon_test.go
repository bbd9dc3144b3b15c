package ops

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pingora-go/pingora/internal/testbin"
	"golang.org/x/sys/unix"
)

// runDaemon starts pingora with -d and waits for the foreground process to return, which it
// does once the background copy serves. It returns the daemon's pid from the pid file.
func runDaemon(t *testing.T, bin, cfg, pidFile string, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"-d", "-c", cfg}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("pingora -d: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("pid file: %v\n%s", err, out.String())
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

// procField returns the value of a "Name:\tvalue" line of /proc/pid/status.
func procField(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.Fields(v)[0]
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return ""
}

// TestDaemon: -d detaches (the command returns, the daemon leads its own session), writes the
// pid file, serves, logs to error_log, and stops cleanly on SIGTERM, removing its pid file.
func TestDaemon(t *testing.T) {
	bin := testbin.Binary(t)
	o := startOrigin(t)
	addr := testbin.FreeAddr(t)
	dir := t.TempDir()
	pidFile, errLog := filepath.Join(dir, "pingora.pid"), filepath.Join(dir, "error.log")
	cfg := writeConf(t, dir, fmt.Sprintf("version: 1\npid_file: %s\nerror_log: %s\nupgrade_sock: %s\n",
		pidFile, errLog, filepath.Join(dir, "upgrade.sock")))
	pid := runDaemon(t, bin, cfg, pidFile, "--listen", addr, "--upstream", o.addr)

	if !processAlive(pid) {
		t.Fatalf("daemon %d is not running", pid)
	}
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Errorf("daemon session %d, want its own (%d)", sid, pid)
	}
	if status, body, err := get("http://" + addr + "/"); err != nil || status != 200 || body != "ok" {
		t.Fatalf("through the daemon: %d %q %v", status, body, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	logged, _ := os.ReadFile(errLog)
	for _, want := range []string{"service started", "SIGTERM: graceful shutdown", "all services stopped"} {
		if !bytes.Contains(logged, []byte(want)) {
			t.Errorf("error log lacks %q:\n%s", want, logged)
		}
	}
}

// TestDaemonDropsPrivileges runs the daemon with user and group set and checks that it serves
// as that user after binding as root. Switching user needs root: CI runs the tests as root,
// and elsewhere this test is skipped with that reason.
func TestDaemonDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching user and group needs root; run as root (CI does) to cover it")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody on this machine: %v", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	bin := testbin.Binary(t)
	o := startOrigin(t)
	addr := testbin.FreeAddr(t)
	// The unprivileged daemon removes its pid file at exit: it needs a directory it can reach
	// and write, which t.TempDir (under a 0700 parent) is not.
	dir, err := os.MkdirTemp("", "pingora-ops-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "pingora.pid")
	cfg := writeConf(t, dir, fmt.Sprintf("version: 1\npid_file: %s\nerror_log: %s\nuser: %s\ngroup: %s\nupgrade_sock: %s\n",
		pidFile, filepath.Join(dir, "error.log"), u.Username, g.Name, filepath.Join(dir, "upgrade.sock")))
	pid := runDaemon(t, bin, cfg, pidFile, "--listen", addr, "--upstream", o.addr)
	if uid := procField(t, pid, "Uid"); uid != u.Uid {
		t.Errorf("daemon runs as uid %s, want %s", uid, u.Uid)
	}
	if gid := procField(t, pid, "Gid"); gid != g.Gid {
		t.Errorf("daemon runs as gid %s, want %s", gid, g.Gid)
	}
	if status, _, err := get("http://" + addr + "/"); err != nil || status != 200 {
		t.Fatalf("through the daemon: %d %v", status, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}
