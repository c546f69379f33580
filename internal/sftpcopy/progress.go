package sftpcopy

import (
	"io"
	"sync"
	"time"
)

// Progress is the running total of one copy.
type Progress struct {
	Bytes int64 // copied so far
	Total int64 // to copy in all, known before the first byte moves
	Files int   // files finished
	// TotalFiles is how many files the copy has in all.
	TotalFiles int
	Elapsed    time.Duration // since the first byte
	Done       bool          // the last call: the copy is over, well or not
}

// Rate is the average speed so far, in bytes per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Bytes) / p.Elapsed.Seconds()
}

// ETA is how long the rest should take at the average speed so far, or -1
// when there is no speed yet to tell.
func (p Progress) ETA() time.Duration {
	r := p.Rate()
	if r <= 0 {
		return -1
	}
	return time.Duration(float64(p.Total-p.Bytes) / r * float64(time.Second))
}

// progressEvery is how often Progress is called while bytes move: often
// enough for a bar to look live, rarely enough to cost nothing.
const progressEvery = 200 * time.Millisecond

// meter counts bytes and calls the Progress callback at most every
// progressEvery. Concurrent readers may add at once.
type meter struct {
	fn func(Progress)

	mu    sync.Mutex
	p     Progress
	start time.Time
	last  time.Time
}

func newMeter(fn func(Progress), total int64, files int) *meter {
	return &meter{fn: fn, p: Progress{Total: total, TotalFiles: files}}
}

func (m *meter) add(n int64) {
	if m.fn == nil || n == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.start.IsZero() {
		m.start, m.last = now, now
	}
	m.p.Bytes += n
	if now.Sub(m.last) >= progressEvery {
		m.last = now
		m.p.Elapsed = now.Sub(m.start)
		m.fn(m.p)
	}
}

func (m *meter) fileDone() {
	m.mu.Lock()
	m.p.Files++
	m.mu.Unlock()
}

func (m *meter) done() {
	if m.fn == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.start.IsZero() {
		m.p.Elapsed = time.Since(m.start)
	}
	m.p.Done = true
	m.fn(m.p)
}

// countingReader counts what is read through it into a meter.
type countingReader struct {
	r io.Reader
	m *meter
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.m.add(int64(n))
	return n, err
}

// countingWriter counts what is written through it into a meter.
type countingWriter struct {
	w io.Writer
	m *meter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.m.add(int64(n))
	return n, err
}
