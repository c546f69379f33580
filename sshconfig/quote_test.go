package sshconfig

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandArg(t *testing.T) {
	tests := []struct {
		goos, in, want string
	}{
		{"linux", "/usr/local/bin/gkessh", "/usr/local/bin/gkessh"},
		{"linux", "/home/Jane Doe/bin/gkessh", "'/home/Jane Doe/bin/gkessh'"},
		{"linux", "it's", `'it'\''s'`},
		{"linux", "50%", "50%%"},
		{"linux", "", "''"},
		{"darwin", "/Users/Jane Doe/go/bin/gkessh", "'/Users/Jane Doe/go/bin/gkessh'"},
		{"windows", `C:\Users\jane\go\bin\gkessh.exe`, "C:/Users/jane/go/bin/gkessh.exe"},
		{"windows", `C:\Program Files\gkessh\gkessh.exe`, `"C:/Program Files/gkessh/gkessh.exe"`},
		{"windows", `C:\Users\Jane Doe\.ssh\google_compute_engine`, `"C:/Users/Jane Doe/.ssh/google_compute_engine"`},
		{"windows", "it's", "it's"}, // CreateProcess leaves single quotes alone
		{"windows", `say "hi"`, `"say \"hi\""`},
		{"windows", "", `""`},
		{"windows", "100%", "100%%"},
	}
	for _, tt := range tests {
		if got := commandArg(tt.goos, tt.in); got != tt.want {
			t.Errorf("commandArg(%s, %q) = %s, want %s", tt.goos, tt.in, got, tt.want)
		}
	}
}

// TestWindowsArg checks CommandLineToArgvW's backslash rules, which
// commandArg never meets (it turns backslashes into slashes).
func TestWindowsArg(t *testing.T) {
	tests := []struct{ in, want string }{
		{`a\b`, `a\b`},
		{`a b\`, `"a b\\"`},
		{`a\"b`, `"a\\\"b"`},
		{`a b\\`, `"a b\\\\"`},
	}
	for _, tt := range tests {
		if got := windowsArg(tt.in); got != tt.want {
			t.Errorf("windowsArg(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestPath(t *testing.T) {
	tests := []struct {
		goos, in, want string
	}{
		{"linux", "/home/jane/.ssh/google_compute_engine", "/home/jane/.ssh/google_compute_engine"},
		{"linux", "/home/Jane Doe/.ssh/google_compute_engine", `"/home/Jane Doe/.ssh/google_compute_engine"`},
		{"linux", `/tmp/q"uote`, `"/tmp/q\"uote"`},
		{"linux", `/tmp/back\slash`, `"/tmp/back\\slash"`},
		{"linux", "/tmp/100%", "/tmp/100%%"},
		{"windows", `C:\Users\jane\.ssh\google_compute_engine`, "C:/Users/jane/.ssh/google_compute_engine"},
		{"windows", `C:\Users\Jane Doe\.ssh\google_compute_known_hosts`, `"C:/Users/Jane Doe/.ssh/google_compute_known_hosts"`},
	}
	for _, tt := range tests {
		if got := path(tt.goos, tt.in); got != tt.want {
			t.Errorf("path(%s, %q) = %s, want %s", tt.goos, tt.in, got, tt.want)
		}
	}
}

// TestPathSSHG has OpenSSH read paths written by Path back.
func TestPathSSHG(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("ssh not installed")
	}
	dir := t.TempDir()
	for _, p := range []string{"/home/Jane Doe/.ssh/id", `/tmp/q"uote`, `/tmp/back\slash`, "/tmp/100%", "/tmp/tab\there"} {
		cfg := filepath.Join(dir, "config")
		if err := os.WriteFile(cfg, []byte("Host x\n    IdentityFile "+Path(p)+"\n    UserKnownHostsFile "+Path(p)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ssh", "-G", "-F", cfg, "x").CombinedOutput()
		if err != nil {
			t.Fatalf("ssh -G refuses the path %q: %v\n%s", p, err, out)
		}
		// ssh -G shows IdentityFile before it expands %-tokens.
		for _, want := range []string{"identityfile " + strings.ReplaceAll(p, "%", "%%"), "userknownhostsfile " + p} {
			if !strings.Contains(string(out), "\n"+want+"\n") {
				t.Errorf("ssh -G does not show %s:\n%s", want, out)
			}
		}
	}
}
