package server

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/pingora-go/pingora/conf"
)

// LogFile is a log file opened for appending that can be reopened by path, so that logrotate
// can move it away and signal the server (SIGUSR1) to start a new one. It is safe for
// concurrent use.
type LogFile struct {
	path string

	mu     sync.Mutex // guards the fields below
	f      *os.File
	stderr bool
}

// OpenLogFile opens (creating it if needed) the log file at path for appending.
func OpenLogFile(path string) (*LogFile, error) {
	l := &LogFile{path: path}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Write appends p to the file.
func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the file at the path again and closes the previous one.
func (l *LogFile) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("server: log file: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stderr {
		unix.Dup2(int(f.Fd()), int(os.Stderr.Fd()))
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f = f
	return nil
}

// AlsoStderr points the process's standard error at the file, now and after every Reopen, so
// that a crash report of the Go runtime lands in the log too.
func (l *LogFile) AlsoStderr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stderr = true
	return unix.Dup2(int(l.f.Fd()), int(os.Stderr.Fd()))
}

// Close closes the file.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// NewLogger returns the error logger c describes: error_log_level and error_log_format, to the
// error_log file (reopenable, returned so that the server can reopen it) or to stderr. In a
// daemon's child, stderr is pointed at the file too.
func NewLogger(c *conf.ServerConf) (*slog.Logger, *LogFile, error) {
	level, err := c.SlogLevel()
	if err != nil {
		return nil, nil, err
	}
	var w io.Writer = os.Stderr
	var lf *LogFile
	if c.ErrorLog != "" {
		if lf, err = OpenLogFile(c.ErrorLog); err != nil {
			return nil, nil, err
		}
		if IsDaemonChild() {
			lf.AlsoStderr()
		}
		w = lf
	}
	ho := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, ho)
	if c.ErrorLogFormat == "json" {
		h = slog.NewJSONHandler(w, ho)
	}
	return slog.New(h), lf, nil
}
