package cli

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestHoistFlags(t *testing.T) {
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	app := newApp(newDeps(stdio), stdio)
	for _, tc := range []struct{ in, want string }{
		// Flags after the arguments move in front of them, with their values.
		{"tunnel NODE 8080 --listen 127.0.0.1:9000", "tunnel --listen 127.0.0.1:9000 NODE 8080"},
		{"tunnel --zone z NODE 8080 --listen=:9000 -v", "tunnel --zone z --listen=:9000 -v NODE 8080"},
		{"keys list NODE --format json --audit", "keys list --format json --audit NODE"},
		{"proxy --user %r NODE 22", "proxy --user %r NODE 22"},
		{"proxy NODE 22 --listen-on-stdin --zone=z", "proxy --listen-on-stdin --zone=z NODE 22"},
		{"tunnel NODE 8080 --local-host-port localhost:9000", "tunnel --local-host-port localhost:9000 NODE 8080"},
		// The login: flags after NODE are gkessh's; the command's are its own.
		{"NODE -L 8080:localhost:80 -N", "-L 8080:localhost:80 -N NODE"},
		{"alice@NODE -v -- ls -la", "-v alice@NODE -- ls -la"},
		{"alice@my-vm --zone us-west1-a -- sudo systemctl restart kubelet", "--zone us-west1-a alice@my-vm -- sudo systemctl restart kubelet"}, // README
		{"NODE ls -la --zone x", "NODE ls -la --zone x"},
		{"-t NODE top -d 1", "-t NODE top -d 1"},
		// gcloud's `NODE -- SSH_ARGS`: options first, then the command.
		{"NODE -- -N -L 8080:localhost:80", "-N -L 8080:localhost:80 NODE --"},
		{"NODE -- -t top -d 1", "-t NODE -- top -d 1"},
		{`NODE --ssh-flag=-L 8080:localhost:80 --ssh-flag -N`, "-L 8080:localhost:80 -N NODE"},
		// "--" ends the flags everywhere else.
		{"tunnel NODE -- --listen x", "tunnel NODE -- --listen x"},
		// Unknown flags move too, so that urfave names them.
		{"tunnel NODE 8080 --bogus", "tunnel --bogus NODE 8080"},
		// A value that looks like a flag stays a value.
		{"NODE --key-expire-after -1h", "--key-expire-after -1h NODE"},
		{"", ""},
	} {
		in := append([]string{"gkessh"}, strings.Fields(tc.in)...)
		want := append([]string{"gkessh"}, strings.Fields(tc.want)...)
		if got := hoistFlags(app, in); !slices.Equal(got, want) {
			t.Errorf("hoistFlags(%q) = %q, want %q", tc.in, got, want)
		}
	}
	// gcloud quotes an option and its value in one --ssh-flag.
	in := []string{"gkessh", "NODE", "--ssh-flag=-L 8080:localhost:80", "--ssh-flag", "-N -A", "--", "top"}
	want := []string{"gkessh", "-L", "8080:localhost:80", "-N", "-A", "NODE", "--", "top"}
	if got := hoistFlags(app, in); !slices.Equal(got, want) {
		t.Errorf("hoistFlags(%q) = %q, want %q", in, got, want)
	}
}

// hoistFlags only reorders: whatever the arguments (--ssh-flag aside, which
// splits its value), it returns the same ones, none lost or added.
func FuzzHoistFlags(f *testing.F) {
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	app := newApp(newDeps(stdio), stdio)
	for _, s := range []string{"tunnel NODE 8080 --listen :1", "NODE -- -N -L 1:a:2 top -d", "-t NODE -- -- x", "keys list --format", "--zone"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := append([]string{"gkessh"}, strings.Fields(s)...)
		if slices.ContainsFunc(in, func(a string) bool { return strings.HasPrefix(a, "--ssh-flag") }) {
			return
		}
		got := hoistFlags(app, slices.Clone(in))
		a, b := slices.Clone(in), slices.Clone(got)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("hoistFlags(%q) = %q: not the same arguments", in, got)
		}
	})
}
