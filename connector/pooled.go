package connector

import (
	"errors"
	"os"
	"syscall"

	"github.com/pingora-go/pingora/internal/sock"
	"github.com/pingora-go/pingora/pool"
	"github.com/pingora-go/pingora/protocols/h1"
)

// pooledConn is what the pool holds: a client session and what it takes to check its socket
// before reuse without allocating.
type pooledConn struct {
	s       *h1.ClientSession
	key     uint64 // the reuse hash of the peer it connects to
	rc      syscall.RawConn
	peek    func(fd uintptr) bool
	alive   bool
	peekBuf [1]byte
}

// newPooledConn makes the pooling state of s, a connection to the peer whose reuse hash is key.
func newPooledConn(s *h1.ClientSession, key uint64) *pooledConn {
	pc := &pooledConn{s: s, key: key}
	if sc, ok := s.Conn().(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			pc.rc = rc
			pc.peek = pc.peekFunc()
		}
	}
	return pc
}

// Close closes the session.
func (pc *pooledConn) Close() error { return pc.s.Close() }

// check reports whether the idle connection can carry another request: the peer has not
// closed it and has sent nothing unsolicited.
func (pc *pooledConn) check() bool {
	if pc.s.Broken() {
		return false
	}
	if pc.rc == nil || !sock.Supported {
		return pool.ConnAlive(pc.s.Conn())
	}
	pc.alive = false
	err := pc.rc.Read(pc.peek)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The last exchange's deadline passed while the connection sat idle (see park).
		if pc.s.ClearDeadlines() != nil {
			return false
		}
		err = pc.rc.Read(pc.peek)
	}
	return err == nil && pc.alive
}

// park prepares a session for the pool. The deadlines armed for its last exchange stay: they
// lie at most 5/4 of the timeouts ahead (h1's coarse deadlines), so that a connection reused
// soon, the common case under load, needs no new deadline, where clearing them here would
// cost one deadline change now and two at the next exchange. One that passes while the
// connection is idle harms nothing: check clears it, and the session arms a new one before
// its next read or write.
func park(s *h1.ClientSession) {
	s.Release()
}
