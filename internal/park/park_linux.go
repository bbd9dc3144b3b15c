// Package park keeps idle connections without a goroutine each: a parked connection is
// watched by one epoll instance, and a callback runs on a new goroutine when it becomes
// readable, when its deadline passes, or when the parker closes.
//
// A server that parks its long-idle keep-alive connections holds, per idle connection, only
// the connection itself and a small entry here: no goroutine stack and no buffer.
package park

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// Supported reports whether parking works on this system.
const Supported = true

// sweepEvery is how often deadlines are checked; a parked connection may outlive its deadline
// by up to this much.
const sweepEvery = 500 * time.Millisecond

// Parker holds parked connections. The zero value is not usable; call New.
type Parker struct {
	epfd int

	mu      sync.Mutex // guards the fields below
	entries map[int32]*entry
	closed  bool
	done    chan struct{}
}

type entry struct {
	conn     net.Conn
	fd       int32
	deadline time.Time
	resume   func(readable bool)
}

// New starts a parker and its watching goroutine; Close stops it.
func New() (*Parker, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &Parker{epfd: fd, entries: map[int32]*entry{}, done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Park hands c to the parker until it becomes readable (or the peer closes it), then
// resume(true) runs on a new goroutine, which owns c again. When deadline passes first, or the
// parker closes, resume(false) runs instead. Park returns false, without calling resume, when
// c cannot be parked (it has no file descriptor of its own, or the parker is closed); the
// caller keeps c.
func (p *Parker) Park(c net.Conn, deadline time.Time, resume func(readable bool)) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	fd := int32(-1)
	if rc.Control(func(f uintptr) { fd = int32(f) }) != nil || fd < 0 {
		return false
	}
	e := &entry{conn: c, fd: fd, deadline: deadline, resume: resume}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.entries[fd] = e
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollOneShot, Fd: fd}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		delete(p.entries, fd)
		return false
	}
	return true
}

// epollOneShot is EPOLLONESHOT, which package syscall types as a negative int.
const epollOneShot = 1 << 30

// Len returns how many connections are parked.
func (p *Parker) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Close stops watching: every parked connection is resumed with false, and later Parks fail.
func (p *Parker) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var all []*entry
	for fd, e := range p.entries {
		all = append(all, e)
		delete(p.entries, fd)
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	}
	p.mu.Unlock()
	<-p.done
	syscall.Close(p.epfd)
	for _, e := range all {
		go e.resume(false)
	}
}

func (p *Parker) loop() {
	defer close(p.done)
	var events [256]syscall.EpollEvent
	lastSweep := time.Now()
	for {
		n, err := syscall.EpollWait(p.epfd, events[:], int(sweepEvery/time.Millisecond))
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		if err != nil && err != syscall.EINTR {
			p.mu.Unlock()
			return
		}
		for i := 0; i < n; i++ {
			fd := events[i].Fd
			e := p.entries[fd]
			if e == nil {
				continue
			}
			delete(p.entries, fd)
			syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
			go e.resume(true)
		}
		if now := time.Now(); now.Sub(lastSweep) >= sweepEvery {
			lastSweep = now
			for fd, e := range p.entries {
				if now.After(e.deadline) {
					delete(p.entries, fd)
					syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
					go e.resume(false)
				}
			}
		}
		p.mu.Unlock()
	}
}
