package connector

import (
	"syscall"

	"github.com/pingora-go/pingora/internal/sock"
	"github.com/pingora-go/pingora/pool"
	"github.com/pingora-go/pingora/protocols/h1"
)

// pooledConn is what the pool holds: a client session and what it takes to check its socket
// before reuse without allocating.
type pooledConn struct {
	s       *h1.ClientSession
	rc      syscall.RawConn
	peek    func(fd uintptr) bool
	alive   bool
	peekBuf [1]byte
}

func newPooledConn(s *h1.ClientSession) *pooledConn {
	pc := &pooledConn{s: s}
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
	if err := pc.rc.Read(pc.peek); err != nil {
		return false
	}
	return pc.alive
}

// park prepares a session for the pool: no deadline may fire while it is idle.
func park(s *h1.ClientSession) {
	s.Release()
	s.ClearDeadlines()
}
