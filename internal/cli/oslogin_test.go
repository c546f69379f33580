//go:build unix

package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/keys"
)

// TestSSHGKENodeUnderEnforcedOSLogin: a project that enforces OS Login
// (enable-oslogin=TRUE) still lets gkessh onto its GKE nodes with metadata
// keys, as the nodes' own enable-oslogin=false tells their guest agent; an
// ordinary VM of the same project is refused before anything is written.
func TestSSHGKENodeUnderEnforcedOSLogin(t *testing.T) {
	t.Parallel()
	for _, mode := range sshdModes() {
		t.Run(mode, func(t *testing.T) {
			e := newParallelSSHEnv(t, mode, 1)
			e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
			if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := e.run(e.node(0).Name, "--", "echo", "in")
			if code != 0 || stdout != "in\n" {
				t.Fatalf("GKE node: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, "key to project metadata ssh-keys") {
				t.Errorf("stderr does not say where the key went:\n%s", stderr)
			}
			writes := e.srv.Stats().MetadataWrites
			_, stderr, code = e.run("plain-vm", "--", "true")
			if code != 255 || !strings.Contains(stderr, "OS Login is on, so the key goes into a Google account's OS Login profile") {
				t.Errorf("OS Login VM: exit %d, stderr:\n%s", code, stderr)
			}
			if got := e.srv.Stats().MetadataWrites; got != writes {
				t.Errorf("OS Login VM: %d metadata writes", got-writes)
			}
		})
	}
}

// TestSSHOSLoginExtrasNamed: 2-step verification, security keys and OS
// Login certificates are refused with a message naming each that is on.
func TestSSHOSLoginExtrasNamed(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 0)
	if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	e.seedProject(map[string]string{"enable-oslogin": "TRUE", "enable-oslogin-2fa": "TRUE", "enable-oslogin-sk": "true"})
	_, stderr, code := e.run("plain-vm", "--", "true")
	for _, want := range []string{"2-step verification (enable-oslogin-2fa)", "security keys (enable-oslogin-sk)", "gcloud compute ssh"} {
		if code != 255 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
	if strings.Contains(stderr, "certificates") {
		t.Errorf("names certificates, which are off:\n%s", stderr)
	}
}

// TestDoctorOSLoginRoles: on an OS Login node, doctor says which OS Login
// role the caller holds: osAdminLogin (sudo), osLogin, or neither.
func TestDoctorOSLoginRoles(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 0)
	if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
	for _, tt := range []struct {
		perms []string
		want  string
	}{
		{[]string{"compute.instances.osAdminLogin", "compute.instances.osLogin"}, "(roles/compute.osAdminLogin): login with sudo"},
		{[]string{"compute.instances.osLogin"}, "(roles/compute.osLogin): login without sudo"},
		{[]string{}, "you hold neither"},
	} {
		tok := "t" + strings.Join(tt.perms, "")
		e.srv.AddGrant(tok, emulator.Grant{Principal: "ops@example.com", Projects: []string{e.srv.ProjectName()}, Permissions: tt.perms})
		if err := os.WriteFile(filepath.Join(e.home, "token"), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _, _ := e.run("doctor", "plain-vm")
		if !strings.Contains(out, tt.want) {
			t.Errorf("perms %v: doctor lacks %q:\n%s", tt.perms, tt.want, out)
		}
	}
}

// TestSSHOSLoginVM: on an ordinary VM under OS Login, gkessh imports the
// key into the gcloud account's OS Login profile with its expiry and logs
// in as the profile's POSIX user, writing no metadata.
func TestSSHOSLoginVM(t *testing.T) {
	e := newSSHTestEnv(t, "builtin", 0)
	if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
	t.Setenv("CLOUDSDK_CORE_ACCOUNT", "owner@"+e.srv.ProjectName()+".example") // the emulator token's principal
	writes := e.srv.Stats().MetadataWrites
	stdout, stderr, code := e.run("plain-vm", "--", "echo", "in")
	if code != 0 || stdout != "in\n" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	if want := "Imported your key into the OS Login profile of owner@demo-project.example (user owner_demo_project_example), expiring"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if got := e.srv.Stats().MetadataWrites; got != writes {
		t.Errorf("%d metadata writes under OS Login", got-writes)
	}
	// A user asked for that is not the profile's is named, in gcloud's
	// words, and the login is as the profile's.
	_, stderr, code = e.run("alice@plain-vm", "--", "true")
	if want := "Using OS Login user [owner_demo_project_example] instead of requested user [alice]\n"; code != 0 || !strings.Contains(stderr, want) {
		t.Errorf("alice@plain-vm: exit %d, stderr lacks %q:\n%s", code, want, stderr)
	}
	// Not asked for, the default user's replacement is said with -v only,
	// as gcloud logs it at info.
	_, stderr, code = e.run("plain-vm", "--", "true")
	_, verbose, vcode := e.run("-v", "plain-vm", "--", "true")
	def, _ := keys.LocalUser()
	if want := "Using OS Login user [owner_demo_project_example] instead of default user [" + def + "]"; code != 0 || vcode != 0 || strings.Contains(stderr, want) || !strings.Contains(verbose, want) {
		t.Errorf("default user: exit %d and %d, %q not in -v's stderr only:\n%s\n-v:\n%s", code, vcode, want, stderr, verbose)
	}
	if out, _, code := e.run("plain-vm", "--dry-run"); code != 0 || !strings.Contains(out, "is in your OS Login profile (user owner_demo_project_example), expiring") || !strings.Contains(out, "would log in as owner_demo_project_example ") {
		t.Errorf("--dry-run: exit %d:\n%s", code, out)
	}
	if out, _, code := e.run("doctor", "plain-vm"); code != 0 || !strings.Contains(out, "ok    OS Login is on for plain-vm: your key goes into your OS Login profile, and you log in as owner_demo_project_example") {
		t.Errorf("doctor: exit %d:\n%s", code, out)
	}
	// keys remove takes the key out of the profile, not out of metadata;
	// its dry run reads the profile and says which it would do.
	for _, run := range []struct{ args, want string }{
		{"keys remove plain-vm --dry-run", "would remove your key SHA256:"},
		{"keys remove plain-vm", "Removed your key SHA256:"},
		{"keys remove plain-vm --dry-run", "nothing to remove"},
		{"keys remove plain-vm", "nothing to remove"},
	} {
		if out, stderr, code := e.run(strings.Fields(run.args)...); code != 0 || !strings.Contains(out, run.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", run.args, code, out, stderr, run.want)
		}
	}
}

// TestKeysEnsureOSLogin: keys ensure under OS Login imports the key into
// the OS Login profile, as a login would, and writes no metadata.
func TestKeysEnsureOSLogin(t *testing.T) {
	e := newSSHTestEnv(t, "builtin", 0)
	e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
	t.Setenv("CLOUDSDK_CORE_ACCOUNT", "owner@"+e.srv.ProjectName()+".example") // the emulator token's principal
	writes := e.srv.Stats().MetadataWrites
	out, stderr, code := e.run("keys", "ensure")
	if want := "Imported your key into the OS Login profile of owner@demo-project.example (user owner_demo_project_example), expiring"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("exit %d, stdout %q lacks %q; stderr:\n%s", code, out, want, stderr)
	}
	if got := e.srv.Stats().MetadataWrites; got != writes {
		t.Errorf("%d metadata writes under OS Login", got-writes)
	}
}

// TestConfigSSHOSLoginUsers: config-ssh gives each OS Login VM the POSIX
// user of the profile, read once however many such VMs there are, and
// leaves GKE nodes (enable-oslogin=false on the instance) with --user.
func TestConfigSSHOSLoginUsers(t *testing.T) {
	t.Parallel()
	e := newEmuEnv(t, emulator.Config{Nodes: 1})
	e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
	for _, n := range []string{"vm-a", "vm-b"} {
		if _, err := e.srv.AddNode(n, "us-west1-a"); err != nil {
			t.Fatal(err)
		}
	}
	stdio := Stdio{Out: io.Discard, Err: io.Discard}
	d := e.deps(stdio)
	reads := 0
	d.gcloud = func(section, name string) (string, error) {
		if section+"/"+name != "core/account" {
			return "", nil
		}
		reads++
		return "owner@" + e.srv.ProjectName() + ".example", nil // the emulator token's principal
	}
	path := filepath.Join(e.home, "ssh_config")
	o := configSSHOptions{openSSHOptions: openSSHOptions{globalOptions: e.options(), keyOptions: keyOptions{User: "nat"}, Strict: "yes"}, Path: path}
	if err := runConfigSSH(context.Background(), o, d, stdio); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{}
	var host string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "Host":
			host = f[1]
		case len(f) == 2 && f[0] == "User":
			users[host] = f[1]
		}
	}
	want := map[string]string{"vm-a": "owner_demo_project_example", "vm-b": "owner_demo_project_example", e.srv.Nodes()[0]: "nat"}
	for h, u := range want {
		if users[h] != u {
			t.Errorf("%s: User %q, want %q", h, users[h], u)
		}
	}
	if reads != 1 {
		t.Errorf("the OS Login profile was read %d times for two VMs, want once", reads)
	}
}

// TestHostileOSLoginUser: an OS Login profile whose POSIX user name could
// not be a --user (a newline that would start a Host * block in
// ~/.ssh/config, shell code that ProxyCommand's %r would run) is refused
// wherever it would be used: the login and the proxy fail before any key
// goes into the profile, config-ssh and inventory skip the node with an
// escaped warning and keep the others.
func TestHostileOSLoginUser(t *testing.T) {
	for i, evil := range []string{"x\nHost *\n    ProxyCommand touch PWNED", "r$(touch${IFS}PWNED)", "ok\x1b[2Kspoof"} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := newTestEnv(t, emulator.Config{Nodes: 1})
			if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
				t.Fatal(err)
			}
			e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
			account := "owner@" + e.srv.ProjectName() + ".example" // the emulator token's principal
			t.Setenv("CLOUDSDK_CORE_ACCOUNT", account)
			e.srv.SetPosixUsername(account, evil)
			// As it shows in messages: %q-quoted, so escaped; raw is
			// what must not show when it has control characters.
			escaped, raw := fmt.Sprintf("%q", evil), evil
			if !strings.ContainsFunc(evil, unicode.IsControl) {
				raw = "\x00never"
			}
			for _, argv := range [][]string{{"plain-vm", "--", "true"}, {"proxy", "--zone", "us-west1-a", "plain-vm", "22"}} {
				_, stderr, code := e.run(argv...)
				if code != 255 || !strings.Contains(stderr, escaped) || strings.Contains(stderr, raw) {
					t.Errorf("%q: exit %d, stderr:\n%s\nwant 255 and the name escaped", argv, code, stderr)
				}
			}
			// Nothing went into the profile: with a sane name back,
			// keys remove finds no key there.
			e.srv.SetPosixUsername(account, "owner")
			if out, stderr, code := e.run("keys", "remove", "plain-vm"); code != 0 || !strings.Contains(out, "nothing to remove") {
				t.Errorf("keys remove: exit %d, stdout %q, stderr %q: the key was imported", code, out, stderr)
			}
			e.srv.SetPosixUsername(account, evil)
			config := filepath.Join(e.home, "ssh_config")
			_, stderr, code := e.run("config-ssh", "--ssh-config-file", config)
			b, err := os.ReadFile(config)
			if err != nil {
				t.Fatal(err)
			}
			if code != 0 || strings.Contains(string(b), "PWNED") || strings.Contains(string(b), "spoof") || strings.Contains(string(b), "plain-vm") || !strings.Contains(string(b), e.srv.Nodes()[0]) {
				t.Errorf("config-ssh: exit %d, config:\n%s", code, b)
			}
			if !strings.Contains(stderr, "skipping plain-vm") || !strings.Contains(stderr, escaped) || strings.Contains(stderr, raw) {
				t.Errorf("config-ssh stderr:\n%s\nwant the node skipped, its user escaped", stderr)
			}
			out, stderr, code := e.run("inventory", "--list")
			if code != 0 || strings.Contains(out, "plain-vm") || strings.Contains(out, "PWNED") || strings.Contains(out, "spoof") || !strings.Contains(stderr, "skipping plain-vm") {
				t.Errorf("inventory: exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr)
			}
		})
	}
}

// TestOSLoginImpersonated: under impersonation the key goes into the
// impersonated service account's OS Login profile, as gcloud picks it
// (auth/impersonate_service_account, else core/account), and the login is
// as that profile's POSIX user.
func TestOSLoginImpersonated(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
	t.Setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", e.url+"/")
	grant := emulator.Grant{Projects: []string{e.srv.ProjectName()}}
	robot, target := "robot@demo-project.iam.gserviceaccount.com", "deployer@demo-project.iam.gserviceaccount.com"
	key, err := e.srv.AddServiceAccount(emulator.Account{Email: robot, Grant: grant}, e.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.AddServiceAccount(emulator.Account{Email: target, Grant: grant, TokenCreators: []string{robot}}, e.url); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(e.home, "key.json")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GKESSH_ACCESS_TOKEN_FILE", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", keyFile)
	t.Setenv("CLOUDSDK_CORE_ACCOUNT", robot) // gcloud's account, not the profile's
	for _, how := range [][]string{{"--impersonate-service-account", target}, nil} {
		if how == nil {
			t.Setenv("CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT", target)
		}
		stdout, stderr, code := e.run(append(how, "-v", "plain-vm", "--", "echo", "in")...)
		if code != 0 || stdout != "in\n" || !strings.Contains(stderr, "logged in as "+emulator.OSLoginUsername(target)+" after") {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s", how, code, stdout, stderr)
		}
	}
}

// TestOSLoginNoAccountMessage: with OS Login on for the project and no
// gcloud account, keys ensure (no NODE) does not speak of "this instance",
// and doctor says OS Login is on once.
func TestOSLoginNoAccountMessage(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 0)
	if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
	_, stderr, code := e.run("keys", "ensure")
	// (It makes the key pair first: that much of keys ensure is local.)
	want := "gkessh: OS Login is on, so the key goes into a Google account's OS Login profile, and gcloud names no account: " +
		"set one with 'gcloud config set account EMAIL' (or CLOUDSDK_CORE_ACCOUNT)\n"
	lines := strings.SplitAfter(stderr, "\n")
	if last := lines[len(lines)-2]; code == 0 || last != want || strings.Contains(stderr, "instance") {
		t.Errorf("keys ensure: exit %d, stderr\n%q\nwant\n%q", code, stderr, want)
	}
	out, _, _ := e.run("doctor", "plain-vm")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "FAIL  OS Login") && strings.Count(line, "OS Login is on") != 1 {
			t.Errorf("doctor repeats itself: %q", line)
		}
	}
	if !strings.Contains(out, "FAIL  OS Login is on for plain-vm, so your key goes into a Google account's OS Login profile, and gcloud names no account: set one with") {
		t.Errorf("doctor:\n%s", out)
	}
}
