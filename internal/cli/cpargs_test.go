package cli

import (
	"errors"
	"strings"
	"testing"
)

// What gcloud's FileReference.FromPath makes of the same inputs (checked
// against the SDK's own, python3, for the cases that are not Windows'),
// except ":PATH", which gcloud takes for a local file and gkessh for PATH on
// every selected node.
func TestParseFileRef(t *testing.T) {
	tests := []struct {
		arg     string
		windows bool
		want    fileRef
	}{
		{arg: "node:/tmp/x", want: fileRef{Node: "node", Path: "/tmp/x", Remote: true}},
		{arg: "me@node:x", want: fileRef{User: "me", Node: "node", Path: "x", Remote: true}},
		{arg: "node:", want: fileRef{Node: "node", Remote: true}},
		{arg: "node:a:b", want: fileRef{Node: "node", Path: "a:b", Remote: true}},
		{arg: ":/var/log", want: fileRef{Path: "/var/log", Remote: true}},
		{arg: "plain", want: fileRef{Path: "plain"}},
		{arg: "./a:b", want: fileRef{Path: "./a:b"}},
		{arg: "/tmp/a:b", want: fileRef{Path: "/tmp/a:b"}},
		{arg: ".hidden:x", want: fileRef{Path: ".hidden:x"}},
		{arg: "a@b@c:d", want: fileRef{Path: "a@b@c:d"}},
		{arg: "@node:d", want: fileRef{Path: "@node:d"}},
		{arg: "me@:d", want: fileRef{Path: "me@:d"}},
		{arg: `a\b:c`, want: fileRef{Path: `a\b:c`}},
		{arg: `C:\x`, windows: true, want: fileRef{Path: `C:\x`}},
		{arg: `C:\x`, want: fileRef{Node: "C", Path: `\x`, Remote: true}},
		{arg: `node:C:\x`, windows: true, want: fileRef{Node: "node", Path: `C:\x`, Remote: true}},
	}
	for _, tt := range tests {
		if got := parseFileRef(tt.arg, tt.windows); got != tt.want {
			t.Errorf("parseFileRef(%q, windows=%v) = %+v, want %+v", tt.arg, tt.windows, got, tt.want)
		}
	}
}

func TestParseCopyArgs(t *testing.T) {
	tests := []struct {
		args []string
		want copySpec
		err  string
	}{
		{args: []string{"a", "b", "node:/d"}, want: copySpec{Push: true, Node: "node", Sources: []string{"a", "b"}, Dest: "/d"}},
		{args: []string{"me@node:/a", "node:b", "."}, err: "same node"},
		{args: []string{"me@node:/a", "me@node:b", "."}, want: copySpec{User: "me", Node: "node", Sources: []string{"/a", "b"}, Dest: "."}},
		{args: []string{"a", ":/tmp/"}, want: copySpec{Push: true, Sources: []string{"a"}, Dest: "/tmp/"}},
		{args: []string{":/var/log/syslog", "out"}, want: copySpec{Sources: []string{"/var/log/syslog"}, Dest: "out"}},
		{args: []string{"a", "b"}, err: "neither"},
		{args: []string{"n1:a", "n2:b"}, err: "between nodes"},
		{args: []string{"n1:a", "b", "c"}, err: "every source is on the node"},
		{args: []string{"n1:a"}, err: "give SRC... DST"},
	}
	for _, tt := range tests {
		got, err := parseCopyArgs(tt.args, false)
		if tt.err != "" {
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want a usage error with %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || got.Push != tt.want.Push || got.User != tt.want.User || got.Node != tt.want.Node ||
			strings.Join(got.Sources, "|") != strings.Join(tt.want.Sources, "|") || got.Dest != tt.want.Dest {
			t.Errorf("%q: got %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

// A remote reference written back as [USER@]NODE:PATH reads the same, and
// its node is one gcloud's pattern accepts.
func FuzzParseFileRef(f *testing.F) {
	for _, s := range []string{"node:/x", "me@node:", ":x", "./a:b", "a@b@c:d", `C:\x`, "n:a:b"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, arg string, windows bool) {
		r := parseFileRef(arg, windows)
		if !r.Remote {
			if r.Path != arg || r.User != "" || r.Node != "" {
				t.Fatalf("local %q became %+v", arg, r)
			}
			return
		}
		s := r.Node + ":" + r.Path
		if r.User != "" {
			s = r.User + "@" + s
		}
		if s != arg {
			t.Fatalf("%q reads as %+v, which writes back as %q", arg, r, s)
		}
		if r.Node != "" && (r.Node[0] == '.' || strings.ContainsAny(r.Node, `:/\@`) || strings.ContainsAny(r.User, ":@")) {
			t.Fatalf("%q: node %q or user %q outside gcloud's pattern", arg, r.Node, r.User)
		}
	})
}
