package perr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func opError(errno syscall.Errno) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
}

func TestFromDialErrorRealDials(t *testing.T) {
	addr := closedPort(t)
	past := net.Dialer{Deadline: time.Now().Add(-time.Second)}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	var plain net.Dialer

	tests := []struct {
		name string
		dial func() error
		want ErrorType
	}{
		{"refused", func() error { _, err := net.Dial("tcp", addr); return err }, ConnectRefused},
		{"dialer deadline passed", func() error { _, err := past.Dial("tcp", addr); return err }, ConnectTimedout},
		{"context deadline passed", func() error { _, err := plain.DialContext(expired, "tcp", addr); return err }, ConnectTimedout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.dial()
			if err == nil {
				t.Fatal("dial succeeded")
			}
			e := FromDialError(err)
			if e.Type != tt.want || e.Source != Upstream {
				t.Errorf("FromDialError(%v) = %v, want Upstream %v", err, e, tt.want)
			}
			if !errors.Is(e, err) || e.Cause != err {
				t.Errorf("cause not kept: %v", e.Cause)
			}
			if retry, ok := e.Retry.Decided(); retry || !ok {
				t.Errorf("Retry = %v, want Decided(false)", e.Retry)
			}
			if StatusFor(e) == 0 {
				t.Error("StatusFor gave no response for an upstream connect error")
			}
		})
	}
}

func TestFromDialErrorMapping(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want ErrorType
	}{
		{"ECONNREFUSED", opError(syscall.ECONNREFUSED), ConnectRefused},
		{"ETIMEDOUT", opError(syscall.ETIMEDOUT), ConnectTimedout},
		{"os deadline", os.ErrDeadlineExceeded, ConnectTimedout},
		{"context deadline", context.DeadlineExceeded, ConnectTimedout},
		{"context deadline behind fmt", fmt.Errorf("dial: %w", context.DeadlineExceeded), ConnectTimedout},
		{"timeout in a join", errors.Join(errors.New("a"), os.ErrDeadlineExceeded), ConnectTimedout},
		{"EADDRNOTAVAIL", opError(syscall.EADDRNOTAVAIL), BindError},
		{"EPERM", opError(syscall.EPERM), InternalError},
		{"EADDRINUSE", opError(syscall.EADDRINUSE), InternalError},
		{"ENETUNREACH", opError(syscall.ENETUNREACH), ConnectNoRoute},
		{"EHOSTUNREACH", opError(syscall.EHOSTUNREACH), ConnectNoRoute},
		{"ECONNRESET", opError(syscall.ECONNRESET), ConnectError},
		{"context canceled", context.Canceled, ConnectError},
		{"dns failure", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, ConnectError},
		{"no timeout in a join", errors.Join(errors.New("a"), errors.New("b")), ConnectError},
		{"plain", errors.New("boom"), ConnectError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := FromDialError(tt.err)
			if e.Type != tt.want || e.Source != Upstream || e.Cause != tt.err {
				t.Errorf("FromDialError(%v) = %+v, want Upstream %v", tt.err, e, tt.want)
			}
		})
	}
	if FromDialError(nil) != nil {
		t.Error("FromDialError(nil) != nil")
	}
}
