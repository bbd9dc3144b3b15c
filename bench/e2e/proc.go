package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a stopped process has to exit after SIGTERM before it gets SIGKILL.
const stopGrace = 5 * time.Second

// proc is a process the harness started; stop ends it by its PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

// procs keeps every running process the harness started, so that an interrupt stops them all.
var procs struct {
	mu  sync.Mutex // guards m and off
	m   map[*proc]bool
	off bool // set once stopAll ran: no new process may start
}

// start runs argv (pinned to cpus with taskset when cpus is not empty) with env added to the
// harness's environment and stdout and stderr appended to log.
func start(name, cpus string, env []string, log string, argv ...string) (*proc, error) {
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
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	procs.mu.Lock()
	defer procs.mu.Unlock()
	if procs.off {
		return nil, errors.New("harness is stopping")
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if procs.m == nil {
		procs.m = map[*proc]bool{}
	}
	procs.m[p] = true
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the process's id (taskset execs the program, so the PID is the program's own).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to stopGrace, then sends SIGKILL and waits for the exit.
func (p *proc) stop() {
	procs.mu.Lock()
	delete(procs.m, p)
	procs.mu.Unlock()
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stopAll stops every process still running and refuses new ones.
func stopAll() {
	procs.mu.Lock()
	procs.off = true
	var ps []*proc
	for p := range procs.m {
		ps = append(ps, p)
	}
	procs.mu.Unlock()
	for _, p := range ps {
		p.stop()
	}
}

// waitListening waits until addr accepts TCP connections, the process exits or ctx ends.
func waitListening(ctx context.Context, p *proc, addr string) error {
	for {
		if err := dialOnce(addr); err == nil {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited before listening on %s: %v", p.name, addr, p.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not listening on %s: %w", p.name, addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
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

// procStat holds the fields of /proc/PID/stat the harness uses.
type procStat struct {
	ppid  int
	ticks int64 // utime + stime
}

// parseStat parses the contents of /proc/PID/stat. The command name (field 2) may hold spaces
// and parentheses, so the fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, errors.New("stat: too few fields")
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("stat: %w", err)
	}
	return procStat{ppid: ppid, ticks: ut + st}, nil
}

// tree returns pid and all its descendants (nginx's workers are children of its master).
func tree(pid int) []int {
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
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], n)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// cpuTime is the user plus system CPU time used so far by pid and its descendants.
func cpuTime(pid int) time.Duration {
	var ticks int64
	for _, p := range tree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		if st, err := parseStat(b); err == nil {
			ticks += st.ticks
		}
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTicks)
}

// statusKB returns the sum over pid and its descendants of a "kB" field of /proc/PID/status
// (VmHWM, VmRSS).
func statusKB(pid int, field string) int64 {
	var sum int64
	for _, p := range tree(pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		n, err := statusField(f, field)
		f.Close()
		if err == nil {
			sum += n
		}
	}
	return sum
}

// statusField reads one "Name:   123 kB" line of a /proc/PID/status file.
func statusField(r io.Reader, field string) (int64, error) {
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

// openFDs is the number of open file descriptors of pid and its descendants.
func openFDs(pid int) int {
	n := 0
	for _, p := range tree(pid) {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		if err == nil {
			n += len(ents)
		}
	}
	return n
}
