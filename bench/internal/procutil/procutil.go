// Package procutil holds what the benchmark harnesses share about the processes they start:
// starting them pinned to CPUs with their output in a log file, stopping them (all of them on
// an interrupt), waiting for them to listen, reading their CPU time, memory and open files
// from /proc, and the harness's own setup (the tools it needs, its interrupt context, its
// temporary directory).
package procutil

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopGrace is how long a stopped process has to exit after SIGTERM before it gets SIGKILL.
const StopGrace = 5 * time.Second

// Proc is a process the harness started; Stop ends it by its PID.
type Proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

// running keeps every running process the harness started, so that an interrupt stops them
// all.
var running struct {
	mu  sync.Mutex // guards m and off
	m   map[*Proc]bool
	off bool // set once StopAll ran: no new process may start
}

// Start runs argv (pinned to cpus with taskset when cpus is not empty) with env added to the
// harness's environment and stdout and stderr appended to the file log. name names the
// process in errors.
func Start(name, cpus string, env []string, log string, argv ...string) (*Proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	lf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// The kernel kills the child if the harness dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &Proc{name: name, cmd: cmd, done: make(chan struct{})}
	running.mu.Lock()
	defer running.mu.Unlock()
	if running.off {
		return nil, errors.New("the harness is stopping")
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if running.m == nil {
		running.m = map[*Proc]bool{}
	}
	running.m[p] = true
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Name is the name the process was started with.
func (p *Proc) Name() string { return p.name }

// PID is the process's id (taskset execs the program, so the PID is the program's own).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error once Exited reports true, and nil before.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Stop sends SIGTERM, waits up to StopGrace, then sends SIGKILL and waits for the exit.
func (p *Proc) Stop() {
	running.mu.Lock()
	delete(running.m, p)
	running.mu.Unlock()
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(StopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// StopAll stops every process still running and refuses to start new ones.
func StopAll() {
	running.mu.Lock()
	running.off = true
	var ps []*Proc
	for p := range running.m {
		ps = append(ps, p)
	}
	running.mu.Unlock()
	for _, p := range ps {
		p.Stop()
	}
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitListening waits until addr accepts TCP connections, p (if not nil) exits or ctx ends.
func WaitListening(ctx context.Context, p *Proc, addr string) error {
	name := addr
	if p != nil {
		name = p.name
	}
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before listening on %s: %v", p.name, addr, p.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not listening on %s: %w", name, addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// NeedTools checks that each of tools is installed; the error names the first missing one
// and carries hint, such as the command that installs them.
func NeedTools(hint string, tools ...string) error {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed (%s): %w", tool, hint, err)
		}
	}
	return nil
}

// Session is the setup of one harness run: a context ended by SIGINT or SIGTERM and a
// temporary directory for configurations and logs.
type Session struct {
	// Ctx ends on SIGINT or SIGTERM.
	Ctx context.Context
	// Dir is the run's temporary directory.
	Dir string

	stop context.CancelFunc
	keep bool
}

// NewSession makes a temporary directory named with prefix and a context that ends on SIGINT
// or SIGTERM. With keep the directory stays after Close and its name is printed to standard
// error.
func NewSession(prefix string, keep bool) (*Session, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "configs and logs in", dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	return &Session{Ctx: ctx, Dir: dir, stop: stop, keep: keep}, nil
}

// Close stops every process the harness started, removes the temporary directory unless it
// is kept, and stops listening for signals.
func (s *Session) Close() {
	StopAll()
	if !s.keep {
		os.RemoveAll(s.Dir)
	}
	s.stop()
}

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in /proc/PID/stat.
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
}()

// Stat holds the fields of /proc/PID/stat the harnesses use.
type Stat struct {
	PPID  int
	Ticks int64 // utime + stime, in clock ticks
}

// ParseStat parses the contents of /proc/PID/stat. The command name (field 2) may hold spaces
// and parentheses, so the fields are counted from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return Stat{}, errors.New("stat: too few fields")
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Stat{}, fmt.Errorf("stat: %w", err)
	}
	return Stat{PPID: ppid, Ticks: ut + st}, nil
}

// Tree returns pid and all its descendants (nginx's workers are children of its master).
func Tree(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		st, err := ParseStat(b)
		if err != nil {
			continue
		}
		children[st.PPID] = append(children[st.PPID], n)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// CPUTime is the user plus system CPU time used so far by pid and its descendants; a process
// whose stat cannot be read counts as 0.
func CPUTime(pid int) time.Duration {
	var ticks int64
	for _, p := range Tree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		if st, err := ParseStat(b); err == nil {
			ticks += st.Ticks
		}
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTicks)
}

// StatusKB returns the sum over pid and its descendants of a "kB" field of /proc/PID/status
// (VmHWM, VmRSS).
func StatusKB(pid int, field string) int64 {
	var sum int64
	for _, p := range Tree(pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		n, err := StatusField(f, field)
		f.Close()
		if err == nil {
			sum += n
		}
	}
	return sum
}

// StatusField reads one "Name:   123 kB" line of a /proc/PID/status file.
func StatusField(r io.Reader, field string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		v := strings.TrimSuffix(strings.TrimSpace(rest), " kB")
		return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("status: no %s", field)
}

// OpenFDs is the number of open file descriptors of pid and its descendants.
func OpenFDs(pid int) int {
	n := 0
	for _, p := range Tree(pid) {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		if err == nil {
			n += len(ents)
		}
	}
	return n
}

// LoadAvg returns the first three fields of /proc/loadavg (the load averages over 1, 5 and 15
// minutes), or "?" if it cannot be read.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// ProcessCPU is the user plus system CPU time pid alone has used so far.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return 0, err
	}
	return time.Duration(st.Ticks) * time.Second / time.Duration(clockTicks), nil
}

// BuildPingora builds cmd/pingora into dir and returns the binary's path. It builds in the main
// module, whose go.sum covers the binary's dependencies (the bench module's does not).
func BuildPingora(ctx context.Context, dir string) (string, error) {
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/pingora-go/pingora").Output()
	if err != nil {
		return "", fmt.Errorf("locating the main module: %w", err)
	}
	bin := filepath.Join(dir, "pingora")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/pingora")
	cmd.Dir = strings.TrimSpace(string(root))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}
