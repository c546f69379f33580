package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/gce"
)

// runOutput prints a run as it goes: node-prefixed lines (default), one
// block per node (--group) or one JSON object per node (--format json), and
// on a terminal a progress line on stderr. Every write holds mu, so lines
// from different nodes never interleave.
type runOutput struct {
	stdio Stdio
	group bool
	json  bool
	width int // longest node name, for aligned prefixes
	total int

	mu       sync.Mutex
	bufs     map[string]*nodeOutput   // --group and json: each node's output so far
	lines    map[string][]*lineWriter // default: each node's writers, for the last partial line
	finished int
	failed   int
	progress liveLine // on stderr, when it is a terminal
}

// nodeOutput is a node's two streams, kept for --group and json.
type nodeOutput struct{ out, err bytes.Buffer }

func newRunOutput(stdio Stdio, o runOptions, names []string) *runOutput {
	w := &runOutput{stdio: stdio, group: o.Group, json: o.JSON, total: len(names), bufs: map[string]*nodeOutput{}, lines: map[string][]*lineWriter{}}
	for _, n := range names {
		w.width = max(w.width, len(printable(n)))
	}
	w.progress = liveLine{w: stdio.Err, live: isTerminal(stdio.Err)}
	return w
}

// writers returns where node's stdout and stderr go.
func (w *runOutput) writers(node string) (io.Writer, io.Writer) {
	if w.group || w.json {
		b := &nodeOutput{}
		w.mu.Lock()
		w.bufs[node] = b
		w.mu.Unlock()
		return &lockedWriter{mu: &w.mu, w: &b.out}, &lockedWriter{mu: &w.mu, w: &b.err}
	}
	out, errw := &lineWriter{o: w, node: node, dst: w.stdio.Out}, &lineWriter{o: w, node: node, dst: w.stdio.Err}
	w.mu.Lock()
	w.lines[node] = []*lineWriter{out, errw}
	w.mu.Unlock()
	return out, errw
}

// done reports one node's result.
func (w *runOutput) done(r fleet.Result) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finished++
	if r.Status != fleet.OK {
		w.failed++
	}
	w.clearProgress()
	b := w.bufs[r.Node]
	if b == nil {
		b = &nodeOutput{}
	}
	delete(w.bufs, r.Node)
	for _, l := range w.lines[r.Node] {
		if len(l.partial) > 0 {
			fmt.Fprintf(l.dst, "%s %s\n", w.prefix(r.Node), l.partial)
		}
	}
	delete(w.lines, r.Node)
	switch {
	case w.json:
		w.printJSON(r, b)
	case w.group:
		fmt.Fprintf(w.stdio.Out, "── %s: %s (%v)\n", printable(r.Node), printable(describeResult(r)), r.Duration.Round(time.Millisecond))
		w.stdio.Out.Write(endLine(b.out.Bytes()))
		if b.err.Len() > 0 {
			fmt.Fprintf(w.stdio.Err, "── %s (stderr)\n", printable(r.Node))
			w.stdio.Err.Write(endLine(b.err.Bytes()))
		}
	case r.Status != fleet.OK && (r.Err != nil || r.Status != fleet.Failed):
		// The reason a node produced no (or cut short) output, in its column.
		fmt.Fprintf(w.stdio.Err, "%s gkessh: %s\n", w.prefix(r.Node), printable(describeResult(r)))
	}
	w.drawProgress()
}

// skipped lists a matched node that is not RUNNING.
func (w *runOutput) skipped(in *gce.Instance) {
	if w.json {
		w.done(fleet.Result{Node: in.Name, Zone: gce.ZoneName(in.Zone), Status: fleet.Skipped, Exit: fleet.NoExit,
			Err: fmt.Errorf("instance is %s, not RUNNING", in.Status)})
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.stdio.Err, "gkessh: %s\n", printable(fmt.Sprintf("skipping %s (%s): %s, not RUNNING", in.Name, gce.ZoneName(in.Zone), in.Status)))
}

// prefix is the column a node's lines start with: its name, escaped
// (names come from the API), padded to the longest.
func (w *runOutput) prefix(node string) string {
	return fmt.Sprintf("%-*s", w.width+1, printable(node)+":")
}

// describeResult is a node's outcome in a few words.
func describeResult(r fleet.Result) string {
	switch {
	case r.Status == fleet.OK:
		return "ok"
	case r.Status == fleet.Failed && r.Err == nil:
		return fmt.Sprintf("exited %d", r.Exit)
	}
	return fmt.Sprintf("%s: %s", r.Status, shortReason(r.Err))
}

// jsonResult is one line of --format json.
type jsonResult struct {
	Node       string  `json:"node"`
	Zone       string  `json:"zone"`
	Status     string  `json:"status"`
	Exit       *int    `json:"exit"` // null when the command never exited
	Stdout     string  `json:"stdout"`
	Stderr     string  `json:"stderr"`
	DurationMS int64   `json:"duration_ms"`
	Error      *string `json:"error"` // null when the node is ok or just exited non-zero
}

func (w *runOutput) printJSON(r fleet.Result, b *nodeOutput) {
	j := jsonResult{Node: r.Node, Zone: r.Zone, Status: string(r.Status), Stdout: b.out.String(), Stderr: b.err.String(), DurationMS: r.Duration.Milliseconds()}
	if r.Exit != fleet.NoExit {
		j.Exit = &r.Exit
	}
	if r.Err != nil {
		msg := r.Err.Error()
		j.Error = &msg
	}
	line, _ := json.Marshal(j) // cannot fail: strings and numbers only
	w.stdio.Out.Write(append(line, '\n'))
}

// stopProgress takes the progress line off the screen for good.
func (w *runOutput) stopProgress() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.progress.stop()
}

// clearProgress and drawProgress run with mu held.
func (w *runOutput) clearProgress() { w.progress.clear() }

func (w *runOutput) drawProgress() {
	w.progress.draw(fmt.Sprintf("[%d/%d done, %d not ok]", w.finished, w.total, w.failed))
}

// liveLine is a status line redrawn in place on a terminal: cleared
// before other output is written, drawn again after. Its owner's lock
// guards it.
type liveLine struct {
	w     io.Writer
	live  bool // w is a terminal, and the line is still wanted
	shown bool // the line is on screen
}

func (l *liveLine) clear() {
	if l.shown {
		io.WriteString(l.w, "\r\x1b[K")
		l.shown = false
	}
}

func (l *liveLine) draw(s string) {
	if l.live {
		io.WriteString(l.w, s)
		l.shown = true
	}
}

// stop takes the line off the screen for good.
func (l *liveLine) stop() {
	l.clear()
	l.live = false
}

func endLine(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return append(b, '\n')
	}
	return b
}

// maxLine is the longest piece of a line a node's output is held back for:
// a longer line (or output with no newline at all, a binary, a hostile
// node) goes out in pieces of this size, each prefixed like a line, so a
// node's output costs bounded memory and linear time.
const maxLine = 64 << 10

// lineWriter prefixes each complete line with the node's name, padded to
// align, and writes it whole. A last line without a newline is written when
// the node finishes (done).
type lineWriter struct {
	o       *runOutput
	node    string
	dst     io.Writer
	prefix  string // o.prefix(node), worked out once
	partial []byte // the line so far, at most maxLine bytes
	out     bytes.Buffer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.o.mu.Lock()
	defer l.o.mu.Unlock()
	n := len(p)
	if l.prefix == "" {
		l.prefix = l.o.prefix(l.node)
	}
	for len(p) > 0 {
		end := bytes.IndexByte(p, '\n')
		whole := end >= 0
		if !whole {
			end = len(p)
		}
		take := min(end, maxLine-len(l.partial))
		l.partial = append(l.partial, p[:take]...)
		p = p[take:]
		switch {
		case whole && take == end:
			p = p[1:] // the newline
			l.endLine()
		case len(l.partial) == maxLine:
			l.endLine()
		}
		if l.out.Len() >= maxLine {
			l.flush()
		}
	}
	l.flush()
	return n, nil
}

// endLine moves the line so far, prefixed, to the lines to write.
func (l *lineWriter) endLine() {
	l.out.WriteString(l.prefix)
	l.out.WriteByte(' ')
	l.out.Write(l.partial)
	l.out.WriteByte('\n')
	l.partial = l.partial[:0]
}

// flush writes the lines so far in one write, under the progress line.
func (l *lineWriter) flush() {
	if l.out.Len() == 0 {
		return
	}
	l.o.clearProgress()
	l.dst.Write(l.out.Bytes())
	l.o.drawProgress()
	l.out.Reset()
}

// lockedWriter appends to a buffer under the output's lock.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
