// Package fill tracks the progress of a body being written so that readers can follow it: a
// reader waits until the writer has written past its position, finished, or aborted.
package fill

import (
	"context"
	"sync"
	"time"
)

// Progress is the shared state of one write in progress. The zero value is not usable; use New.
type Progress struct {
	mu      sync.Mutex // guards the fields below
	written int64
	done    bool
	err     error
	changed chan struct{} // closed and replaced on every change
}

// New returns the progress of a write that has written nothing yet.
func New() *Progress { return &Progress{changed: make(chan struct{})} }

// Advance records that the body now has n bytes and wakes the readers.
func (p *Progress) Advance(n int64) {
	p.mu.Lock()
	p.written = n
	p.wake()
	p.mu.Unlock()
}

// Finish records that the body is complete at n bytes.
func (p *Progress) Finish(n int64) {
	p.mu.Lock()
	p.written, p.done = n, true
	p.wake()
	p.mu.Unlock()
}

// Abort records that the write failed with err; readers get err.
func (p *Progress) Abort(err error) {
	p.mu.Lock()
	if !p.done && p.err == nil {
		p.err = err
		p.wake()
	}
	p.mu.Unlock()
}

func (p *Progress) wake() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// State returns how much is written, whether the write is done, and its error.
func (p *Progress) State() (written int64, done bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.written, p.done, p.err
}

// Wait blocks until more than pos bytes are written, the write is done, or it failed, and
// returns the state then. It gives up with timeoutErr when idle passes without any progress, or
// with ctx's error.
func (p *Progress) Wait(ctx context.Context, pos int64, idle time.Duration, timeoutErr error) (written int64, done bool, err error) {
	var timer *time.Timer
	for {
		p.mu.Lock()
		written, done, err, ch := p.written, p.done, p.err, p.changed
		p.mu.Unlock()
		if written > pos || done || err != nil {
			if timer != nil {
				timer.Stop()
			}
			return written, done, err
		}
		if timer == nil {
			timer = time.NewTimer(idle)
		}
		select {
		case <-ch:
		case <-timer.C:
			return written, false, timeoutErr
		case <-ctx.Done():
			timer.Stop()
			return written, false, ctx.Err()
		}
	}
}

// Cursor is a body reader's position and the last byte it may read: the part of SetRange and
// Read that the storages share.
type Cursor struct {
	Pos int64
	End int64 // last byte to read, inclusive; -1 for the whole body
}

// SetRange moves the cursor to the bytes start to end (inclusive) of a body of size bytes,
// reporting false, and leaving the cursor as it was, for a range the body does not hold or a
// size not known yet (negative).
func (c *Cursor) SetRange(start, end, size int64) bool {
	if size < 0 || start < 0 || end < start || end >= size {
		return false
	}
	c.Pos, c.End = start, end
	return true
}

// Limit returns the end (exclusive) of what the cursor may read of avail bytes.
func (c *Cursor) Limit(avail int64) int64 {
	if c.End >= 0 && c.End+1 < avail {
		return c.End + 1
	}
	return avail
}
