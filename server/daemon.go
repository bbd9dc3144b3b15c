package server

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment of a daemon's child process: the marker that it is the child, and the descriptor
// it reports readiness on.
const (
	daemonEnv   = "PINGORA_DAEMON_CHILD"
	readyFdEnv  = "PINGORA_DAEMON_READY_FD"
	readyFd     = 3 // the first of exec.Cmd.ExtraFiles
	readyMarker = "ready\n"
)

// IsDaemonChild reports whether this process is the background copy a daemon started.
func IsDaemonChild() bool { return os.Getenv(daemonEnv) == "1" }

// detach starts this program again in the background, in a new session, with its standard
// streams on /dev/null (stderr on the error log when there is one), and waits until the copy
// reports that it serves or dies. Go cannot fork a running runtime, so the copy redoes the
// start-up from the beginning.
func (s *Server) detach() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("server: daemon: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("server: daemon: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1", readyFdEnv+"="+strconv.Itoa(readyFd))
	cmd.ExtraFiles = []*os.File{w}
	logFile, err := s.asDaemon(cmd)
	if err != nil {
		w.Close()
		return fmt.Errorf("server: daemon: %w", err)
	}
	if logFile != nil {
		defer logFile.Close()
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("server: daemon: %w", err)
	}
	timeout := time.Duration(s.conf.DaemonReadyTimeoutSeconds) * time.Second
	r.SetReadDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(r).ReadString('\n')
	if line == readyMarker {
		s.log.Info("daemon started", "pid", cmd.Process.Pid)
		return cmd.Process.Release()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("server: daemon (pid %d) not ready after %s", cmd.Process.Pid, timeout)
	}
	werr := cmd.Wait()
	return fmt.Errorf("server: daemon exited before it was ready: %v", werr)
}

// asDaemon makes cmd start as a daemon's background copy: in a session of its own, with its
// standard error on the error log when there is one (the file returned, which the caller
// closes once cmd started) and its other streams on /dev/null.
func (s *Server) asDaemon(cmd *exec.Cmd) (*os.File, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if s.conf.ErrorLog == "" {
		return nil, nil
	}
	f, err := os.OpenFile(s.conf.ErrorLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("error log: %w", err)
	}
	cmd.Stderr = f
	return f, nil
}

// notifyReady tells the process that started this one and waits for it (a daemon's
// launcher, or the old instance of a self-upgrade) that the server serves.
func notifyReady() {
	fd, err := strconv.Atoi(os.Getenv(readyFdEnv))
	if err != nil {
		return
	}
	os.Unsetenv(readyFdEnv)
	f := os.NewFile(uintptr(fd), "daemon-ready")
	if f == nil {
		return
	}
	f.WriteString(readyMarker)
	f.Close()
}

// pidFile is the pid file a daemon wrote.
type pidFile struct{ path string }

// writePidFile writes this process's id at path, keeping a previous file as path.old, with the
// reference's umask 007.
func writePidFile(path string) (*pidFile, error) {
	syscall.Umask(0o007)
	if _, err := os.Stat(path); err == nil {
		if err := os.Rename(path, path+".old"); err != nil {
			return nil, fmt.Errorf("server: pid file: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("server: pid file: %w", err)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("server: pid file: %w", err)
	}
	return &pidFile{path: path}, nil
}

// remove deletes the pid file unless another process (the new one of an upgrade) has written
// its own id there since.
func (p *pidFile) remove() {
	b, err := os.ReadFile(p.path)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(p.path)
	}
}

// dropPrivileges switches to group and user, in that order, with the user's supplementary
// groups, once the listeners are bound. The pid file is handed to the user so it can remove it.
// Without root, it is an error to ask for another user or group.
func dropPrivileges(userName, groupName string, pid *pidFile) error {
	if userName == "" && groupName == "" {
		return nil
	}
	uid, gid := -1, -1
	var groups []int
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			return fmt.Errorf("server: user: %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		ids, err := u.GroupIds()
		if err != nil {
			return fmt.Errorf("server: groups of %s: %w", userName, err)
		}
		for _, id := range ids {
			if n, err := strconv.Atoi(id); err == nil {
				groups = append(groups, n)
			}
		}
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			return fmt.Errorf("server: group: %w", err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if os.Geteuid() != 0 {
		if (uid >= 0 && uid != os.Geteuid()) || (gid >= 0 && gid != os.Getegid()) {
			return fmt.Errorf("server: switching to user %q group %q needs root", userName, groupName)
		}
		return nil
	}
	if pid != nil && uid >= 0 {
		if err := os.Chown(pid.path, uid, gid); err != nil {
			return fmt.Errorf("server: pid file: %w", err)
		}
	}
	if uid >= 0 {
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("server: setgroups: %w", err)
		}
	}
	if gid >= 0 {
		if err := syscall.Setgid(gid); err != nil {
			return fmt.Errorf("server: setgid %d: %w", gid, err)
		}
	}
	if uid >= 0 {
		if err := syscall.Setuid(uid); err != nil {
			return fmt.Errorf("server: setuid %d: %w", uid, err)
		}
	}
	return nil
}
