package fleet

import (
	"errors"
	"testing"
	"time"
)

// TestOutcome: what a node's exec means. A command that finished before
// the interrupt or the node's timeout keeps its own result; one cut short
// is cancelled or timed out, told apart by whether it had started.
func TestOutcome(t *testing.T) {
	cut := errors.New("session ended")
	for _, tc := range []struct {
		name                 string
		interrupted, timeout bool
		status               int
		ran                  bool
		err                  error
		want                 Status
		exit                 int
		msg                  string
	}{
		{"ok", false, false, 0, true, nil, OK, 0, ""},
		{"exit 3", false, false, 3, true, nil, Failed, 3, ""},
		{"unreachable", false, false, 0, false, cut, Unreachable, NoExit, "session ended"},
		{"failed mid-run", false, false, 0, true, cut, Failed, NoExit, "session ended"},
		{"interrupted while running", true, false, 0, true, cut, Cancelled, NoExit, "interrupted while running"},
		{"interrupted before it started", true, false, 0, false, cut, Cancelled, NoExit, "interrupted"},
		{"finished as the interrupt came", true, false, 0, true, nil, OK, 0, ""},
		{"exit 3 as the interrupt came", true, false, 3, true, nil, Failed, 3, ""},
		{"timed out while running", false, true, 0, true, cut, Failed, NoExit, "timed out after 1m0s"},
		{"timed out before it started", false, true, 0, false, cut, Unreachable, NoExit, "timed out after 1m0s before the command started"},
		{"finished as the timeout came", false, true, 0, true, nil, OK, 0, ""},
	} {
		st, exit, err := outcome(tc.interrupted, tc.timeout, time.Minute, tc.status, tc.ran, tc.err)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if st != tc.want || exit != tc.exit || msg != tc.msg {
			t.Errorf("%s: %v, exit %d, %q; want %v, exit %d, %q", tc.name, st, exit, msg, tc.want, tc.exit, tc.msg)
		}
	}
}
