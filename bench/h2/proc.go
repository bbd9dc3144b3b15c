package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a stopped process has to exit after SIGTERM before it gets SIGKILL.
const stopGrace = 5 * time.Second

// proc is a process the benchmark started; stop ends it by its PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

// procs keeps every running process the benchmark started, so that an interrupt stops them.
var procs struct {
	mu  sync.Mutex // guards m and off
	m   map[*proc]bool
	off bool // set once stopAll ran: no new process may start
}

// start runs argv pinned to cpus with taskset, with env added to the environment and its
// output appended to log.
func start(name, cpus string, env []string, log string, argv ...string) (*proc, error) {
	argv = append([]string{"taskset", "-c", cpus}, argv...)
	lf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// The kernel kills the child if the benchmark dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	procs.mu.Lock()
	defer procs.mu.Unlock()
	if procs.off {
		return nil, errors.New("the benchmark is stopping")
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

// pid is the process's id (taskset execs the program, so it is the program's own).
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

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitListening waits until addr accepts TCP connections, the process exits or ctx ends.
func waitListening(ctx context.Context, p *proc, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if p.exited() {
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

// cpuTime is the user plus system CPU time pid has used so far, or 0 if it cannot be read.
// Neither proxy under test has child processes here: nginx runs without a master.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	ticks, err := statTicks(b)
	if err != nil {
		return 0
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTicks)
}

// statTicks returns utime+stime from the contents of /proc/PID/stat. The command name (field
// 2) may hold spaces and parentheses, so the fields are counted from the last ')'.
func statTicks(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return ut + st, nil
}
