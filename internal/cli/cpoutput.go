package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/sftpcopy"
)

// cpOutput shows a copy as it goes. On a terminal (stdout, as scp's
// progress meter) it draws one progress line: the node's while one node
// copies, the fleet's total when many do; nothing when stdout is not a
// terminal. A fleet copy prints one line per node as it ends, or with
// --format json one object. Every write holds mu.
type cpOutput struct {
	out   io.Writer
	json  bool
	fleet bool
	width int // longest node name, for aligned lines
	nodes int

	mu       sync.Mutex
	progress map[string]sftpcopy.Progress
	start    time.Time // the first byte
	drawn    time.Time
	line     liveLine
	finished int
}

func newCpOutput(out io.Writer, live, asJSON, fleet bool, names []string) *cpOutput {
	o := &cpOutput{out: out, line: liveLine{w: out, live: live && !asJSON}, json: asJSON, fleet: fleet, nodes: len(names), progress: map[string]sftpcopy.Progress{}}
	for _, n := range names {
		o.width = max(o.width, len(printable(n)))
	}
	return o
}

// redrawEvery bounds how often the line is redrawn: sftpcopy reports every
// 200 ms per node, and a fleet has many nodes.
const redrawEvery = 200 * time.Millisecond

// update takes a node's progress; from the copying goroutines.
func (o *cpOutput) update(node string, p sftpcopy.Progress) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if o.start.IsZero() && p.Bytes > 0 {
		o.start = now.Add(-p.Elapsed)
	}
	o.progress[node] = p
	if !o.line.live || (now.Sub(o.drawn) < redrawEvery && !p.Done) {
		return
	}
	o.drawn = now
	o.line.clear()
	if o.fleet {
		o.line.draw(o.fleetLine(now))
		return
	}
	o.line.draw(progressLine(printable(node), p))
	if p.Done { // keep the last state on screen, as scp does
		io.WriteString(o.out, "\n")
		o.line.shown = false
	}
}

// fleetLine sums the nodes' progress. Nodes not started yet are counted
// as copying as much as the average started one.
func (o *cpOutput) fleetLine(now time.Time) string {
	var sum sftpcopy.Progress
	for _, p := range o.progress {
		sum.Bytes += p.Bytes
		sum.Total += p.Total
	}
	if n := len(o.progress); n > 0 && n < o.nodes {
		sum.Total += sum.Total / int64(n) * int64(o.nodes-n)
	}
	if !o.start.IsZero() {
		sum.Elapsed = now.Sub(o.start)
	}
	return progressLine(fmt.Sprintf("[%d/%d nodes]", o.finished, o.nodes), sum)
}

// progressLine is one line of the meter: what, percent, bytes, rate, ETA.
func progressLine(label string, p sftpcopy.Progress) string {
	pct := 100
	if p.Total > 0 {
		pct = int(p.Bytes * 100 / p.Total)
	}
	eta := "--:--"
	if p.Done {
		eta = fmtClock(p.Elapsed) + "   "
	} else if d := p.ETA(); d >= 0 {
		eta = fmtClock(d) + " ETA"
	}
	return fmt.Sprintf("%s %3d%% %10s %10s/s %s", label, pct, fmtBytes(p.Bytes), fmtBytes(int64(p.Rate())), eta)
}

// fmtBytes is n in binary units, three significant digits.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	f := "%.1f %ciB"
	if v >= 100 {
		f = "%.0f %ciB"
	}
	return fmt.Sprintf(f, v, "KMGTP"[i])
}

// fmtClock is d as M:SS, or H:MM:SS from an hour.
func fmtClock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// done reports one node of a fleet copy.
func (o *cpOutput) done(r fleet.Result, c sftpcopy.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.finished++
	o.line.clear()
	if o.json {
		o.printJSON(r, c)
	} else {
		line := fmt.Sprintf("%-*s %s", o.width+1, printable(r.Node)+":", printable(describeResult(r)))
		if r.Status == fleet.OK {
			line += fmt.Sprintf(", %s in %s, %v", fmtBytes(c.Bytes), plural(c.Files, "file"), r.Duration.Round(time.Millisecond))
		}
		fmt.Fprintln(o.out, line)
	}
	if o.finished < o.nodes {
		o.line.draw(o.fleetLine(time.Now()))
	}
}

// notes prints what a node's copy left out or found changed, on w.
func notes(w io.Writer, c sftpcopy.Result) {
	for _, s := range c.Skipped {
		fmt.Fprintf(w, "gkessh: skipped %s\n", printable(s))
	}
	for _, s := range c.Changed {
		fmt.Fprintf(w, "gkessh: %s changed while it was copied: the copy has what was read\n", printable(s))
	}
}

// jsonCopy is one line of a fleet copy's --format json.
type jsonCopy struct {
	Node       string   `json:"node"`
	Zone       string   `json:"zone"`
	Status     string   `json:"status"`
	Files      int      `json:"files"`
	Bytes      int64    `json:"bytes"`
	Skipped    []string `json:"skipped,omitempty"`
	Changed    []string `json:"changed,omitempty"`
	DurationMS int64    `json:"duration_ms"`
	Error      *string  `json:"error"` // null when the node is ok
}

func (o *cpOutput) printJSON(r fleet.Result, c sftpcopy.Result) {
	j := jsonCopy{Node: r.Node, Zone: r.Zone, Status: string(r.Status), Files: c.Files, Bytes: c.Bytes,
		Skipped: c.Skipped, Changed: c.Changed, DurationMS: r.Duration.Milliseconds()}
	if r.Err != nil {
		msg := r.Err.Error()
		j.Error = &msg
	}
	line, _ := json.Marshal(j) // cannot fail: strings and numbers only
	o.out.Write(append(line, '\n'))
}

// stop takes the progress line off the screen for good.
func (o *cpOutput) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.line.stop()
}

// plural is n and a noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
