package batchwriter

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// gate is a writer whose writes block until released, recording each one.
type gate struct {
	mu      sync.Mutex
	writes  []string
	entered chan struct{} // receives when a write starts
	release chan struct{} // a write returns once this receives
	err     error
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 100), release: make(chan struct{}, 100)}
}

func (g *gate) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes = append(g.writes, string(p))
	return len(p), g.err
}

func (g *gate) written() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.writes...)
}

// within fails the test unless f returns within a few seconds.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

func TestLoneWriteGoesOutAtOnce(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, 0)
	if n, err := w.Write([]byte("one\n")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if out.String() != "one\n" {
		t.Fatalf("underlying writer holds %q right after Write, want the line", out.String())
	}
}

func TestWritesDuringAWriteGoOutTogether(t *testing.T) {
	g := newGate()
	w := New(g, 0)
	first := make(chan struct{})
	go func() { _, _ = w.Write([]byte("first\n")); close(first) }()
	<-g.entered // the first write is in progress underneath

	// These return without waiting for the write in progress.
	within(t, "a Write behind a write in progress", func() {
		for i := range 3 {
			_, _ = w.Write(fmt.Appendf(nil, "queued %d\n", i))
		}
	})
	g.release <- struct{}{} // the first write returns; the queued lines go next
	<-g.entered
	g.release <- struct{}{}
	<-first
	within(t, "Flush", func() { _ = w.Flush() })

	want := []string{"first\n", "queued 0\nqueued 1\nqueued 2\n"}
	if got := g.written(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("underlying writes %q, want %q", got, want)
	}
}

func TestFlushWaitsForQueuedBytes(t *testing.T) {
	g := newGate()
	w := New(g, 0)
	go func() { _, _ = w.Write([]byte("a\n")) }()
	<-g.entered
	_, _ = w.Write([]byte("b\n")) // queued

	flushed := make(chan struct{})
	go func() { _ = w.Flush(); close(flushed) }()
	select {
	case <-flushed:
		t.Fatal("Flush returned while bytes were still queued")
	case <-time.After(50 * time.Millisecond):
	}
	g.release <- struct{}{}
	<-g.entered
	g.release <- struct{}{}
	select {
	case <-flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("Flush did not return after the queued bytes were written")
	}
	if got := strings.Join(g.written(), ""); got != "a\nb\n" {
		t.Fatalf("written %q", got)
	}
}

func TestWritesWaitWhenTooMuchIsQueued(t *testing.T) {
	g := newGate()
	w := New(g, 0)
	go func() { _, _ = w.Write([]byte("in progress\n")) }()
	<-g.entered
	queued := bytes.Repeat([]byte("x"), MaxPending-2)
	_, _ = w.Write(queued) // room for 2 more bytes

	blocked := make(chan struct{})
	go func() { _, _ = w.Write([]byte("678\n")); close(blocked) }()
	select {
	case <-blocked:
		t.Fatal("a Write beyond the queue's bound returned while nothing drained")
	case <-time.After(50 * time.Millisecond):
	}
	for range 3 {
		g.release <- struct{}{}
	}
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting Write did not return once the queue drained")
	}
	_ = w.Flush()
	if got := strings.Join(g.written(), ""); got != "in progress\n"+string(queued)+"678\n" {
		t.Fatalf("written %d bytes, want all %d in order", len(got), len("in progress\n")+len(queued)+4)
	}
}

func TestErrorGoesToTheWriterThatWrote(t *testing.T) {
	g := newGate()
	g.err = errors.New("disk full")
	g.release <- struct{}{}
	w := New(g, 0)
	if _, err := w.Write([]byte("x\n")); !errors.Is(err, g.err) {
		t.Fatalf("Write error = %v, want the underlying writer's", err)
	}
}

// TestConcurrentWritersKeepLinesWhole runs under -race: every line arrives
// once, whole, and each writer's lines in its order.
func TestConcurrentWritersKeepLinesWhole(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		time.Sleep(10 * time.Microsecond) // a slow pipe lets batches form
		return out.Write(p)
	}), 0)
	const writers, lines = 16, 500
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range lines {
				_, _ = w.Write(fmt.Appendf(nil, "writer %d line %d %s\n", i, j, strings.Repeat("x", j%50)))
			}
		}()
	}
	wg.Wait()
	_ = w.Flush()

	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, line := range got {
		var i, j int
		var pad string
		if _, err := fmt.Sscanf(line, "writer %d line %d %s", &i, &j, &pad); err != nil && j%50 != 0 {
			t.Fatalf("broken line %q: %v", line, err)
		}
		if j != next[i] || len(pad) != j%50 {
			t.Fatalf("line %q out of order or cut (want line %d of writer %d)", line, next[i], i)
		}
		next[i]++
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// syncBuffer is a bytes.Buffer safe to read while a timer writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestLingeringBytesGoOutByThemselves(t *testing.T) {
	var out syncBuffer
	w := New(&out, 10*time.Millisecond)
	_, _ = w.Write([]byte("a\n"))
	_, _ = w.Write([]byte("b\n"))
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "a\nb\n" {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the writer underneath holds %q, want both lines", out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFlushPassesLingeringBytesOn(t *testing.T) {
	var out syncBuffer
	w := New(&out, time.Hour)
	_, _ = w.Write([]byte("a\n"))
	if got := out.String(); got != "" {
		t.Fatalf("a lingering line was written at once: %q", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "a\n" {
		t.Fatalf("after Flush the writer underneath holds %q", got)
	}
}

func TestEnoughBytesGoOutWithoutLingering(t *testing.T) {
	var out syncBuffer
	w := New(&out, time.Hour)
	line := append(bytes.Repeat([]byte("x"), 1023), '\n')
	for range FlushBytes / len(line) {
		_, _ = w.Write(line)
	}
	if got := len(out.String()); got != FlushBytes {
		t.Fatalf("after %d bytes the writer underneath holds %d, want all of them", FlushBytes, got)
	}
}
