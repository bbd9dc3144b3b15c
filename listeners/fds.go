package listeners

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Hand-over limits of the reference's wire protocol: one message of at most MaxFdPayload bytes
// of addresses carrying at most MaxFds descriptors, with connect and accept retried once a
// second.
const (
	MaxFds        = 32
	MaxFdPayload  = 2048
	HandOverRetry = time.Second
	listenBacklog = 65535
)

// File returns a duplicate of ln's socket descriptor, for handing it to another process. A unix
// listener stops removing its path on Close, since the path now belongs to both processes.
func File(ln net.Listener) (*os.File, error) {
	switch l := ln.(type) {
	case *net.TCPListener:
		return l.File()
	case *net.UnixListener:
		l.SetUnlinkOnClose(false)
		return l.File()
	}
	return nil, fmt.Errorf("listeners: cannot hand over a %T", ln)
}

// FromFile adopts an inherited listening socket: it listens again with the reference's backlog
// and, for a unix socket, gives its path a.Perm. f is closed.
func FromFile(f *os.File, a Address) (net.Listener, error) {
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listeners: adopting %s: %w", a, err)
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("listeners: adopting %s: not a socket", a)
	}
	rc, err := sc.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) { err = unix.Listen(int(fd), listenBacklog) })
		if err == nil {
			err = cerr
		}
	}
	if err == nil && a.Network == "unix" {
		perm := a.Perm
		if perm == 0 {
			perm = DefaultUDSPerm
		}
		err = os.Chmod(a.Addr, perm)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("listeners: adopting %s: %w", a, err)
	}
	return ln, nil
}

// SendFds hands listening sockets to a new process waiting on the unix socket at path: one
// message whose data is keys joined by single spaces and whose SCM_RIGHTS carry files in the
// same order. A socket that is missing or refuses is retried retries times, HandOverRetry apart.
func SendFds(path string, retries int, keys []string, files []*os.File) error {
	if len(keys) != len(files) {
		return errors.New("listeners: keys and files differ in number")
	}
	if len(files) > MaxFds {
		return fmt.Errorf("listeners: %d listening sockets, at most %d can be handed over", len(files), MaxFds)
	}
	payload := strings.Join(keys, " ")
	if len(payload) > MaxFdPayload {
		return fmt.Errorf("listeners: addresses take %d bytes, at most %d can be handed over", len(payload), MaxFdPayload)
	}
	var conn *net.UnixConn
	for attempt := 0; ; attempt++ {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
		if err == nil {
			conn = c
			break
		}
		retry := errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EACCES)
		if !retry || attempt >= retries {
			return fmt.Errorf("listeners: connecting to upgrade socket: %w", err)
		}
		time.Sleep(HandOverRetry)
	}
	defer conn.Close()
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	conn.SetWriteDeadline(time.Now().Add(time.Duration(retries+1) * HandOverRetry))
	n, oobn, err := conn.WriteMsgUnix([]byte(payload), unix.UnixRights(fds...), nil)
	if err != nil {
		return fmt.Errorf("listeners: sending listening sockets: %w", err)
	}
	if n != len(payload) || oobn == 0 && len(fds) > 0 {
		return errors.New("listeners: short write sending listening sockets")
	}
	return nil
}

// ReceiveFds waits on a unix socket at path for an old process to hand over its listening
// sockets, and returns them by the address they were configured with. It waits about retries
// seconds for the old process to connect; the socket file is removed afterwards.
func ReceiveFds(path string, retries int) (map[string]*os.File, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("listeners: removing old upgrade socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listeners: upgrade socket: %w", err)
	}
	defer ln.Close()
	// The old process may run as another user once it has dropped its privileges.
	if err := os.Chmod(path, 0o666); err != nil {
		return nil, fmt.Errorf("listeners: upgrade socket: %w", err)
	}
	ln.SetDeadline(time.Now().Add(time.Duration(retries+1) * HandOverRetry))
	conn, err := ln.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("listeners: no old process handed over its sockets on %s: %w", path, err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(time.Duration(retries+1) * HandOverRetry))
	buf := make([]byte, MaxFdPayload)
	oob := make([]byte, unix.CmsgSpace(MaxFds*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("listeners: receiving listening sockets: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, err
	}
	out, err := pairFds(string(buf[:n]), fds)
	if err == nil && flags&unix.MSG_CTRUNC != 0 {
		err = errors.New("listeners: more descriptors sent than can be received")
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, err
	}
	return out, nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("listeners: receiving listening sockets: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// pairFds maps the space-separated keys of a hand-over message to the descriptors, in order.
func pairFds(payload string, fds []int) (map[string]*os.File, error) {
	var keys []string
	if payload != "" {
		keys = strings.Split(payload, " ")
	}
	if len(keys) != len(fds) {
		return nil, fmt.Errorf("listeners: hand-over names %d addresses but carries %d sockets", len(keys), len(fds))
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k] || k == "" {
			return nil, fmt.Errorf("listeners: hand-over names address %q twice or empty", k)
		}
		seen[k] = true
	}
	out := make(map[string]*os.File, len(keys))
	for i, k := range keys {
		unix.CloseOnExec(fds[i])
		out[k] = os.NewFile(uintptr(fds[i]), k)
	}
	return out, nil
}
