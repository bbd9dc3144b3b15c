// Package listeners opens the downstream listening sockets of a server: TCP addresses and unix
// domain sockets, with the reference's bind retries and socket permissions, and the TLS
// settings (certificates by SNI, ALPN, client certificates, reload) of TLS listeners.
package listeners

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Bind retry policy of the reference: a TCP address in use is retried this many times, this far
// apart, which lets a new process bind while an old one is still closing its sockets.
const (
	BindRetries    = 30
	BindRetryDelay = time.Second
)

// DefaultUDSPerm is the permission given to a unix socket's path.
const DefaultUDSPerm os.FileMode = 0o666

// Address is a place to listen: a TCP host:port, or a unix socket path.
type Address struct {
	// Network is "tcp" or "unix".
	Network string
	// Addr is host:port for tcp and the path for unix.
	Addr string
	// Perm is the mode of a unix socket's path; 0 means DefaultUDSPerm.
	Perm os.FileMode
}

// String returns the address as configured: "unix:" prefixed for unix sockets.
func (a Address) String() string {
	if a.Network == "unix" {
		return "unix:" + a.Addr
	}
	return a.Addr
}

// ParseAddress reads "host:port", "unix:/path" or an absolute path (a unix socket).
func ParseAddress(s string) (Address, error) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		if p == "" {
			return Address{}, fmt.Errorf("listeners: empty unix socket path in %q", s)
		}
		return Address{Network: "unix", Addr: p}, nil
	case strings.HasPrefix(s, "/"):
		return Address{Network: "unix", Addr: s}, nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return Address{}, fmt.Errorf("listeners: invalid listen address %q: %w", s, err)
	}
	return Address{Network: "tcp", Addr: s}, nil
}

// Listen opens a listener for a. A TCP address in use is retried BindRetries times,
// BindRetryDelay apart, unless ctx ends first; a stale unix socket file is removed first and the
// new one gets a.Perm.
func Listen(ctx context.Context, a Address) (net.Listener, error) {
	var lc net.ListenConfig
	if a.Network == "unix" {
		if err := removeStaleSocket(a.Addr); err != nil {
			return nil, err
		}
		ln, err := lc.Listen(ctx, "unix", a.Addr)
		if err != nil {
			return nil, err
		}
		perm := a.Perm
		if perm == 0 {
			perm = DefaultUDSPerm
		}
		if err := os.Chmod(a.Addr, perm); err != nil {
			ln.Close()
			return nil, err
		}
		return ln, nil
	}
	for attempt := 0; ; attempt++ {
		ln, err := lc.Listen(ctx, "tcp", a.Addr)
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt >= BindRetries {
			return nil, err
		}
		slog.Warn("listen address in use, retrying", "addr", a.Addr, "attempt", attempt+1, "of", BindRetries)
		t := time.NewTimer(BindRetryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// removeStaleSocket deletes path when it is a socket nobody listens on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("listeners: %s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("listeners: %s is in use by a running server", path)
	}
	return os.Remove(path)
}
