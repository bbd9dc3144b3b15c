// Package lock collapses concurrent cache misses: the first request to miss a key becomes the
// writer and goes upstream; the others wait for it to release the key and then look the key up
// again, instead of sending the same request upstream many times (a thundering herd).
//
// Every wait is bounded: a reader waits at most its own timeout, after which it goes upstream
// by itself, and a writer that holds a key longer than the table's age timeout loses it to the
// next request.
package lock

import (
	"context"
	"sync"
	"time"
)

// Status is how a wait for a key ended.
type Status uint8

// The statuses.
const (
	// Done: the writer stored the response (or started streaming it); look it up again.
	Done Status = iota + 1
	// GiveUp: the writer found the response uncacheable; go upstream without caching.
	GiveUp
	// TransientError: the writer failed (upstream or storage error); compete to be the next
	// writer.
	TransientError
	// AgeTimeout: the writer held the key longer than the age timeout; compete again.
	AgeTimeout
	// WaitTimeout: this reader waited longer than its timeout; go upstream by itself.
	WaitTimeout
	// Canceled: the reader's context ended.
	Canceled
)

// String returns the status's name.
func (s Status) String() string {
	switch s {
	case Done:
		return "done"
	case GiveUp:
		return "give-up"
	case TransientError:
		return "transient-error"
	case AgeTimeout:
		return "age-timeout"
	case WaitTimeout:
		return "wait-timeout"
	case Canceled:
		return "canceled"
	}
	return "unknown"
}

// Table holds the keys currently being fetched. The zero value is not usable; use New.
type Table[K comparable] struct {
	ageTimeout time.Duration

	mu    sync.Mutex // guards locks
	locks map[K]*Lock
}

// New returns a table whose writers lose their key after ageTimeout (0 means 60 seconds).
func New[K comparable](ageTimeout time.Duration) *Table[K] {
	if ageTimeout <= 0 {
		ageTimeout = time.Minute
	}
	return &Table[K]{ageTimeout: ageTimeout, locks: make(map[K]*Lock)}
}

// Lock is one writer's hold on a key, which readers wait on.
type Lock struct {
	deadline time.Time     // when the hold ages out
	done     chan struct{} // closed on release
	status   Status        // set before done is closed
	once     sync.Once
}

// Permit is the writer's side of a Lock.
type Permit[K comparable] struct {
	t   *Table[K]
	key K
	l   *Lock
}

// Acquire makes the caller the writer of key (a Permit) if nobody holds it, or returns the
// Lock of the writer to Wait on. A hold older than the age timeout is taken over: its readers
// are released with AgeTimeout.
func (t *Table[K]) Acquire(key K) (*Permit[K], *Lock) {
	now := time.Now()
	t.mu.Lock()
	if l, ok := t.locks[key]; ok {
		if now.Before(l.deadline) {
			t.mu.Unlock()
			return nil, l
		}
		l.release(AgeTimeout)
	}
	l := &Lock{deadline: now.Add(t.ageTimeout), done: make(chan struct{})}
	t.locks[key] = l
	t.mu.Unlock()
	return &Permit[K]{t: t, key: key, l: l}, nil
}

// Len returns how many keys are held.
func (t *Table[K]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.locks)
}

// Release gives the key up with status s (Done, GiveUp or TransientError) and wakes its
// readers. Releasing twice does nothing.
func (p *Permit[K]) Release(s Status) {
	p.t.mu.Lock()
	if p.t.locks[p.key] == p.l {
		delete(p.t.locks, p.key)
	}
	p.t.mu.Unlock()
	p.l.release(s)
}

func (l *Lock) release(s Status) {
	l.once.Do(func() {
		l.status = s
		close(l.done)
	})
}

// Wait waits for the writer to release the key, at most timeout (and never past the hold's
// age deadline), and returns how it ended.
func (l *Lock) Wait(ctx context.Context, timeout time.Duration) Status {
	wait := time.Until(l.deadline)
	timeoutStatus := AgeTimeout
	if timeout > 0 && timeout < wait {
		wait, timeoutStatus = timeout, WaitTimeout
	}
	if wait <= 0 {
		select {
		case <-l.done:
			return l.status
		default:
			return timeoutStatus
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-l.done:
		return l.status
	case <-timer.C:
		return timeoutStatus
	case <-ctx.Done():
		return Canceled
	}
}
