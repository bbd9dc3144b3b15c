package cache

import (
	"context"
	"errors"
	"io"
)

// Errors of storages and body handlers.
var (
	// ErrAborted is returned to readers of a body whose write was aborted before it finished.
	ErrAborted = errors.New("cache: the body's write was aborted")
	// ErrTooLarge is returned by a Writer when the body outgrows the maximum object size; the
	// write is aborted and the response should stream on without being stored.
	ErrTooLarge = errors.New("cache: response larger than the maximum object size")
	// ErrFillTimeout is returned to a reader that waited longer than the storage's fill timeout
	// for the writer of the body to make progress.
	ErrFillTimeout = errors.New("cache: timed out waiting for the body being written")
	// ErrClosed is returned after a storage or handler was closed.
	ErrClosed = errors.New("cache: closed")
	// ErrRange is returned by BodyReader.SetRange for a range outside the finished body.
	ErrRange = errors.New("cache: range outside the stored body")
)

// Storage keeps responses: a Meta and a body per Key. Implementations are safe for concurrent
// use; every blocking call honours ctx.
type Storage interface {
	// Lookup returns the Meta and a reader of the body stored under key, or a nil Meta when
	// there is none. An entry still being written is returned too (Meta.BodySize is -1): its
	// reader follows the writer. The caller must Close the reader.
	Lookup(ctx context.Context, key Key) (*Meta, BodyReader, error)
	// Create starts storing a response under key, replacing any entry there once the new one
	// is finished — or at once, for storages whose readers can follow a write in progress
	// (see Streaming). meta is owned by the storage from then on. The caller must Finish or
	// Abort the returned writer.
	Create(ctx context.Context, key Key, meta *Meta) (BodyWriter, error)
	// UpdateMeta replaces the Meta of a stored entry, keeping its body (after a 304). It
	// returns false when no finished entry is stored under key.
	UpdateMeta(ctx context.Context, key Key, meta *Meta) (bool, error)
	// Purge removes the entry under key; with a key whose Variance is zero, it removes every
	// variant of the primary key too. It reports whether anything was removed.
	Purge(ctx context.Context, key Key) (bool, error)
	// PurgeTag removes every entry tagged tag (Meta.Tags) and returns how many there were.
	PurgeTag(ctx context.Context, tag string) (int, error)
	// Usage returns the storage's size and eviction counts.
	Usage() Usage
	// Streaming reports whether readers see an entry while it is being written.
	Streaming() bool
}

// Usage is a storage's occupancy.
type Usage struct {
	// Items and Bytes are the entries stored and the sum of their sizes (meta and body).
	Items int64
	Bytes int64
	// EvictedItems and EvictedBytes count what eviction removed to stay under the limit.
	EvictedItems uint64
	EvictedBytes uint64
}

// BodyReader reads a stored body, possibly while it is still being written.
type BodyReader interface {
	// Read reads the next bytes of the body (or of the range set by SetRange) into p. It waits,
	// within ctx and the storage's fill timeout, for a writer that has not written them yet.
	// It returns io.EOF at the end, ErrAborted when the write failed.
	Read(ctx context.Context, p []byte) (int, error)
	// Seek restricts the following reads to the bytes start to end inclusive. It needs a
	// finished body (Size known).
	SetRange(start, end int64) error
	// Size returns the body's length, or -1 while it is being written.
	Size() int64
	// Close releases the reader, which may be recycled: call it once, and not use the reader
	// afterwards.
	Close() error
}

// BodyWriter writes a body into a storage as its pieces arrive.
type BodyWriter interface {
	// Write appends p (which is not retained) to the body.
	Write(ctx context.Context, p []byte) error
	// Finish completes the entry: it becomes visible (if it was not already) with its size. It
	// returns the stored size (meta and body).
	Finish(ctx context.Context) (int64, error)
	// Abort discards the entry; readers following it get ErrAborted. It may be called after
	// Finish or another Abort, doing nothing.
	Abort()
}

// CopyBody writes the body r reads to write, in pieces of buf, for the plan: the whole body
// (RangeNone), one range, or the multipart framing and each range. write receives pieces that
// are only valid during the call.
func (p *RangePlan) CopyBody(ctx context.Context, r BodyReader, buf []byte, write func([]byte) error) error {
	switch p.Result {
	case RangeNone:
		return copyAll(ctx, r, buf, write)
	case RangeSingle:
		if err := r.SetRange(p.Ranges[0].Start, p.Ranges[0].End); err != nil {
			return err
		}
		return copyAll(ctx, r, buf, write)
	case RangeMulti:
		var head []byte
		for i, rg := range p.Ranges {
			head = p.AppendPartHeader(head[:0], i)
			if err := write(head); err != nil {
				return err
			}
			if err := r.SetRange(rg.Start, rg.End); err != nil {
				return err
			}
			if err := copyAll(ctx, r, buf, write); err != nil {
				return err
			}
		}
		return write(p.AppendClose(head[:0]))
	}
	return nil
}

func copyAll(ctx context.Context, r BodyReader, buf []byte, write func([]byte) error) error {
	for {
		n, err := r.Read(ctx, buf)
		if n > 0 {
			if werr := write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
