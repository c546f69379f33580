package cli

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

func TestHoistFlags(t *testing.T) {
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	app := newApp(newDeps(stdio), stdio)
	for _, tc := range []struct{ in, want string }{
		// Flags after the arguments move in front of them, with their values.
		{"tunnel NODE 8080 --listen 127.0.0.1:9000", "tunnel --listen 127.0.0.1:9000 NODE 8080"},
		{"keys list NODE --format json --audit", "keys list --format json --audit NODE"},
		{"tunnel NODE 8080 --local-host-port localhost:9000", "tunnel --local-host-port localhost:9000 NODE 8080"},
		// Global flags go to gkessh itself, wherever they were typed.
		{"tunnel --zone z NODE 8080 --listen=:9000 -v", "--zone z -v tunnel --listen=:9000 NODE 8080"},
		{"proxy --user %r NODE 22", "--user %r proxy NODE 22"},
		{"proxy NODE 22 --listen-on-stdin --zone=z", "--zone=z proxy --listen-on-stdin NODE 22"},
		{"run --all --project p -- id", "--project p run --all -- id"},
		{"--project p run --all -- id", "--project p run --all -- id"},
		{"keys remove --dry-run --user carol", "--dry-run --user carol keys remove"},
		{"keys --dry-run remove NODE --zone=z", "--dry-run --zone=z keys remove NODE"},
		// A command's own flags go to it, even when typed before it.
		{"--port 2222 run --all -- id", "run --port 2222 --all -- id"},
		{"--format json keys list", "keys list --format json"},
		{"--help run", "run --help"},
		// The same flag twice with the same value is one flag.
		{"--zone z run --zone z --all -- id", "--zone z run --all -- id"},
		{"-v doctor --verbose", "-v doctor"},
		{"NODE --dry-run --dry-run=true", "--dry-run NODE"},
		// The login: flags after NODE are gkessh's; the command's are its own.
		{"NODE -L 8080:localhost:80 -N", "-L 8080:localhost:80 -N NODE"},
		{"alice@NODE -v -- ls -la", "-v alice@NODE -- ls -la"},
		{"alice@my-vm --zone us-west1-a -- sudo systemctl restart kubelet", "--zone us-west1-a alice@my-vm -- sudo systemctl restart kubelet"}, // README
		{"NODE ls -la --zone x", "NODE ls -la --zone x"},
		{"-t NODE top -d 1", "-t NODE top -d 1"},
		// -L is repeatable: each is kept.
		{"NODE -L 1:a:1 -L 1:a:1", "-L 1:a:1 -L 1:a:1 NODE"},
		// gcloud's `NODE -- SSH_ARGS`: options first, then the command.
		{"NODE -- -N -L 8080:localhost:80", "-N -L 8080:localhost:80 NODE --"},
		{"NODE -- -t top -d 1", "-t NODE -- top -d 1"},
		{`NODE --ssh-flag=-L 8080:localhost:80 --ssh-flag -N`, "-L 8080:localhost:80 -N NODE"},
		// "--" ends the flags everywhere else.
		{"tunnel NODE -- --listen x", "tunnel NODE -- --listen x"},
		{"run --all -- id --project p", "run --all -- id --project p"},
		// Unknown flags move too, so that urfave names them.
		{"tunnel NODE 8080 --bogus", "tunnel --bogus NODE 8080"},
		// A value that looks like a flag stays a value.
		{"NODE --key-expire-after -1h", "--key-expire-after -1h NODE"},
		{"", ""},
	} {
		in := append([]string{"gkessh"}, strings.Fields(tc.in)...)
		want := append([]string{"gkessh"}, strings.Fields(tc.want)...)
		if got, err := hoistFlags(app, in); err != nil || !slices.Equal(got, want) {
			t.Errorf("hoistFlags(%q) = %q, %v; want %q", tc.in, got, err, want)
		}
	}
	// gcloud quotes an option and its value in one --ssh-flag.
	in := []string{"gkessh", "NODE", "--ssh-flag=-L 8080:localhost:80", "--ssh-flag", "-N -A", "--", "top"}
	want := []string{"gkessh", "-L", "8080:localhost:80", "-N", "-A", "NODE", "--", "top"}
	if got, err := hoistFlags(app, in); err != nil || !slices.Equal(got, want) {
		t.Errorf("hoistFlags(%q) = %q, %v; want %q", in, got, err, want)
	}
}

// TestHoistFlagsRefuses: a flag the command does not honour, wherever it
// was typed, and one flag given two values, are usage errors that name the
// command and what was typed.
func TestHoistFlagsRefuses(t *testing.T) {
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	app := newApp(newDeps(stdio), stdio)
	for _, tc := range []struct {
		in, cmd string
		want    []string
	}{
		{"--project a run --project b --all -- id", "run", []string{"--project a", "--project b"}},
		{"run --all --zone=a --zone b -- id", "run", []string{"--zone=a", "--zone b"}},
		{"--iap-endpoint a --iap-tunnel-url-override b NODE", "", []string{"--iap-endpoint a", "--iap-tunnel-url-override b"}},
		{"NODE --dry-run --dry-run=false", "", []string{"--dry-run", "--dry-run=false"}},
		{"-v keys list --verbose=false", "keys list", []string{"-v", "--verbose=false"}},
		{"--dry-run tunnel NODE 8080", "tunnel", []string{"tunnel does not take --dry-run"}},
		{"tunnel NODE 8080 --dry-run", "tunnel", []string{"tunnel does not take --dry-run"}},
		{"keys list --user u", "keys list", []string{"keys list does not take --user"}},
		{"keys list N --iap-tunnel-url-override=u", "keys list", []string{"keys list does not take --iap-endpoint"}},
		{"--ssh-key-expire-after 1h doctor", "doctor", []string{"doctor does not take --key-expire-after"}},
		{"-v version", "version", []string{"version does not take --verbose"}},
		{"--tty run --all -- id", "run", []string{"run does not take --tty", "a login"}},
		// Typed after the command too: never urfave's "not defined".
		{"run --all --tty -- id", "run", []string{"run does not take --tty", "a login"}},
		{"scp --plain a N:b", "scp", []string{"scp does not take --plain", "a login"}},
	} {
		_, err := hoistFlags(app, append([]string{"gkessh"}, strings.Fields(tc.in)...))
		var ue usageError
		if !errors.As(err, &ue) || ue.cmd != tc.cmd {
			t.Errorf("hoistFlags(%q): %#v, want a usage error of %q", tc.in, err, tc.cmd)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(ue.msg, w) {
				t.Errorf("hoistFlags(%q): %q does not say %q", tc.in, ue.msg, w)
			}
		}
	}
}

// FuzzHoistFlags: hoistFlags only reorders, and drops a flag repeated with
// the same value (--ssh-flag aside, which splits its value): it invents no
// argument and loses none that differs from those it keeps; and what it
// returns, hoisted again, stays as it is.
func FuzzHoistFlags(f *testing.F) {
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	app := newApp(newDeps(stdio), stdio)
	for _, s := range []string{"tunnel NODE 8080 --listen :1", "NODE -- -N -L 1:a:2 top -d", "-t NODE -- -- x", "keys list --format", "--zone",
		"--project p run --all --zone z -- id", "--port 2 keys --format json list N", "-v NODE -v --user u"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := append([]string{"gkessh"}, strings.Fields(s)...)
		if slices.ContainsFunc(in, func(a string) bool { return strings.HasPrefix(a, "--ssh-flag") }) {
			return
		}
		got, err := hoistFlags(app, slices.Clone(in))
		counts := map[string]int{}
		for _, a := range in {
			counts[a]++
		}
		for _, a := range got {
			if counts[a]--; counts[a] < 0 {
				t.Fatalf("hoistFlags(%q) = %q: %q is not in the input as often", in, got, a)
			}
		}
		for _, a := range in {
			if !slices.Contains(got, a) && !slices.ContainsFunc(got, func(k string) bool { return sameFlag(app, a, k) }) {
				t.Fatalf("hoistFlags(%q) = %q: lost %q", in, got, a)
			}
		}
		if err != nil {
			return
		}
		if again, err := hoistFlags(app, slices.Clone(got)); err != nil || !slices.Equal(again, got) {
			t.Fatalf("hoistFlags(%q) = %q, but hoisted again %q, %v", in, got, again, err)
		}
	})
}

// sameFlag reports whether arguments a and b are both flags, naming one
// flag of app, whether with the same name or an alias.
func sameFlag(app *ucli.App, a, b string) bool {
	if !strings.HasPrefix(a, "-") || !strings.HasPrefix(b, "-") {
		return false
	}
	x, y := flagName(a), flagName(b)
	if x == y {
		return true
	}
	var walk func(flags []ucli.Flag, cmds []*ucli.Command) bool
	walk = func(flags []ucli.Flag, cmds []*ucli.Command) bool {
		if f := lookupFlag(flags, x); f != nil && slices.Contains(f.Names(), y) {
			return true
		}
		for _, c := range cmds {
			if walk(c.Flags, c.Subcommands) {
				return true
			}
		}
		return false
	}
	return walk(app.Flags, app.Commands)
}
