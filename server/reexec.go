package server

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Upgrade replaces this process with a new instance of the same program, as a SIGQUIT and a
// new process started with -u do, but started by this process and checked: the executable is
// started again with the same arguments (and --upgrade), the listening sockets are handed to
// it over upgrade_sock, and only once it reports that it serves does this process stop
// accepting and shut down gracefully (after UpgradeCloseTimeout). If the new process fails to
// start, to take the sockets or to become ready within daemon_ready_timeout_seconds, it is
// killed and this process goes on serving; the error says why.
//
// A daemon's new instance is a daemon too (new session, standard error on the error log,
// pid file rewritten); a foreground process's new instance shares its standard streams and
// becomes an orphan once this process exits, which suits a terminal or a supervisor that
// follows the pid file, but not a service manager that watches the first process (use the
// daemon mode there, as dist/systemd does).
//
// Upgrade is for programs that change what they listen on at run time, such as the pingora
// binary when a reloaded file adds or changes a listener. Only one upgrade runs at a time.
func (s *Server) Upgrade() error {
	if !s.upgrading.CompareAndSwap(false, true) {
		return errors.New("server: an upgrade is already in progress")
	}
	err := s.reexec()
	if err != nil {
		s.upgrading.Store(false)
		s.log.Error("self-upgrade aborted; still serving", "error", err)
		return err
	}
	go s.drainAfterUpgrade()
	return nil
}

// upgradeArgs returns this process's arguments with --upgrade, added when missing.
func upgradeArgs(args []string) []string {
	if slices.ContainsFunc(args, func(a string) bool {
		return a == "-u" || a == "--upgrade" || a == "--upgrade=true"
	}) {
		return args
	}
	return append(slices.Clip(args), "--upgrade")
}

// reexec starts the new instance, hands it the sockets and waits until it is ready.
func (s *Server) reexec() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, upgradeArgs(os.Args[1:])...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, daemonEnv+"=") || strings.HasPrefix(kv, readyFdEnv+"=")
	})
	cmd.Env = append(cmd.Env, readyFdEnv+"="+strconv.Itoa(readyFd))
	cmd.ExtraFiles = []*os.File{w}
	if IsDaemonChild() {
		// The new instance is the daemon's background copy itself: it writes the pid file.
		cmd.Env = append(cmd.Env, daemonEnv+"=1")
		logFile, err := s.asDaemon(cmd)
		if err != nil {
			w.Close()
			return err
		}
		if logFile != nil {
			defer logFile.Close()
		}
	} else {
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("starting %s: %w", exe, err)
	}
	s.log.Info("self-upgrade: new process started", "pid", cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fail := func(err error) error {
		cmd.Process.Kill()
		<-exited
		return err
	}
	if err := s.handOver(); err != nil {
		return fail(err)
	}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(r).ReadString('\n')
		line <- l
	}()
	timeout := time.Duration(s.conf.DaemonReadyTimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Minute
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-line:
		if l == readyMarker {
			s.log.Info("self-upgrade: the new process serves", "pid", cmd.Process.Pid)
			return nil
		}
		// The pipe closed without the marker: the process exited.
		return fmt.Errorf("the new process (pid %d) exited before it was ready: %v", cmd.Process.Pid, <-exited)
	case err := <-exited:
		return fmt.Errorf("the new process (pid %d) exited before it was ready: %v", cmd.Process.Pid, err)
	case <-t.C:
		return fail(fmt.Errorf("the new process (pid %d) was not ready after %v", cmd.Process.Pid, timeout))
	}
}
