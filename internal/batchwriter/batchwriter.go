// Package batchwriter coalesces writes, such as log lines from many
// goroutines, into fewer writes to the writer underneath.
package batchwriter

import (
	"io"
	"sync"
	"time"
)

// Bounds of the bytes a Writer holds.
const (
	// FlushBytes is how much a Writer gathers before writing at once,
	// without waiting for its linger time.
	FlushBytes = 32 << 10
	// MaxPending bounds the bytes waiting behind a write in progress;
	// beyond it, Writes wait, as they would wait for a slow writer.
	MaxPending = 1 << 20
)

// Writer gathers Writes and passes them on in batches, each Write's bytes
// whole and in order. Bytes written are passed on within the linger time,
// sooner when FlushBytes have gathered or when a write underneath is in
// progress as they arrive, in which case they go out right after it.
// With a linger of 0 a lone Write is passed on at once, and only Writes
// that arrive during a write are batched.
//
// A Write that does not write itself reports no error; Flush passes on
// everything pending. Bytes still pending when the process dies are lost:
// at most the linger time's worth.
type Writer struct {
	w      io.Writer
	linger time.Duration

	mu        sync.Mutex
	drained   sync.Cond // broadcast after every write underneath
	writing   bool      // a caller is writing pending out
	scheduled bool      // a timer will write pending out
	pending   []byte
	spare     []byte // the last batch's memory, reused for the next
}

// New returns a Writer in front of w that holds bytes for at most linger.
func New(w io.Writer, linger time.Duration) *Writer {
	b := &Writer{w: w, linger: linger}
	b.drained.L = &b.mu
	return b
}

// Write appends p to the pending bytes and passes them on now if they are
// due: nothing is lingering, or FlushBytes have gathered.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.writing && len(b.pending) > 0 && len(b.pending)+len(p) > MaxPending {
		b.drained.Wait()
	}
	b.pending = append(b.pending, p...)
	switch {
	case b.writing:
		return len(p), nil // the write in progress takes them next
	case b.linger > 0 && len(b.pending) < FlushBytes:
		if !b.scheduled {
			b.scheduled = true
			time.AfterFunc(b.linger, b.flushScheduled)
		}
		return len(p), nil
	}
	if err := b.drain(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush passes on every byte written before it, and returns the error of
// the last write underneath it made.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.writing {
		b.drained.Wait()
	}
	return b.drain()
}

func (b *Writer) flushScheduled() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scheduled = false
	if !b.writing {
		_ = b.drain() // nobody to tell; the next write will meet it again
	}
}

// drain writes pending out until none is left, releasing the lock during
// each write so that Writes can gather the next batch. b.mu is held and
// no write is in progress.
func (b *Writer) drain() error {
	b.writing = true
	var first error
	for len(b.pending) > 0 {
		batch := b.pending
		b.pending = b.spare[:0]
		b.mu.Unlock()
		_, err := b.w.Write(batch)
		b.mu.Lock()
		if first == nil {
			first = err
		}
		b.spare = batch
		b.drained.Broadcast()
	}
	b.writing = false
	b.drained.Broadcast()
	return first
}
