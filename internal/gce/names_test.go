package gce

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileNames are names a hostile or intercepted API could answer with;
// every one must be refused before it reaches a file, a command or a path.
var hostileNames = []string{
	"",
	"node\nHost *\n    ProxyCommand touch /tmp/x",
	"node\n@cert-authority * ssh-ed25519 AAAA",
	"sp ace",
	`quo"te`,
	"quo'te",
	"n$(touch x)",
	"n`id`",
	"n;id",
	"..",
	".",
	"a/../b",
	"a/b",
	"gke-\u0441luster",  // Cyrillic es, a look-alike of c
	"gke-cluster\u200b", // zero-width space
	"Upper",
	"-lead",
	"trail-",
	"9digit",
	"n%2e%2e",
	"n\x00",
	"n\x1b[2K",
	"n*",
	strings.Repeat("a", 64),
}

func TestCheckName(t *testing.T) {
	for _, name := range []string{"a", "gke-cluster-default-pool-3e89aeb0-b47k", "a1", strings.Repeat("a", 63), "a-b"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
		if err := CheckZone(name); err != nil {
			t.Errorf("CheckZone(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range hostileNames {
		err := CheckName(name)
		var ne *InvalidNameError
		if !errors.As(err, &ne) || ne.Value != name {
			t.Errorf("CheckName(%q) = %v, want an *InvalidNameError", name, err)
			continue
		}
		// The message shows the name escaped, so it cannot forge lines
		// or hide behind look-alikes on a terminal.
		for _, r := range err.Error() {
			if r < ' ' || r > '~' {
				t.Errorf("error for %q has %q unescaped: %s", name, r, err)
			}
		}
		if CheckZone(name) == nil {
			t.Errorf("CheckZone(%q) = nil", name)
		}
	}
}

// TestCheckProject: gcloud's project ID rule (core/properties.py
// _VALID_PROJECT_REGEX); each case was run through it.
func TestCheckProject(t *testing.T) {
	for _, p := range []string{"demo-project", "p1", "123legacy", "google.com:my-project", "a.b-c.example:x"} {
		if err := CheckProject(p); err != nil {
			t.Errorf("CheckProject(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "../../x", "..", "a\nHost *", "My Project", "Upper", "-x", "x-", "a/b", "p;id", "a:b:c", strings.Repeat("a", 64)} {
		if CheckProject(p) == nil {
			t.Errorf("CheckProject(%q) = nil, want an error", p)
		}
	}
}

func TestCheckNamePattern(t *testing.T) {
	for _, p := range []string{"gke-cluster-*", "*", "node-?", "a"} {
		if err := CheckNamePattern(p); err != nil {
			t.Errorf("CheckNamePattern(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "a b", "a,b", "!a", "*\nHost *", "n$(id)", "n;id", "..", "a/b", `"*"`, "gke-\u0441*", "Upper*", strings.Repeat("*", 64)} {
		if CheckNamePattern(p) == nil {
			t.Errorf("CheckNamePattern(%q) = nil, want an error", p)
		}
	}
}

func TestCheckLabel(t *testing.T) {
	tests := []struct {
		key, value string
		ok         bool
	}{
		{"goog-k8s-cluster-name", "cluster", true},
		{"goog-gke-node", "", true},
		{"env_1", "prod-2", true},
		{"größe", "groß", true}, // international letters are allowed
		{"", "v", false},
		{"1key", "v", false},
		{"Key", "v", false},
		{"k", "V", false},
		{"k", "a b", false},
		{"k", "a\nb", false},
		{"k", "$(id)", false},
		{"k", "a.b", false},
		{"k\n", "v", false},
		{strings.Repeat("k", 64), "v", false},
		{"k", strings.Repeat("v", 64), false},
		{strings.Repeat("k", 63), strings.Repeat("v", 63), true},
	}
	for _, tt := range tests {
		if err := CheckLabel(tt.key, tt.value); (err == nil) != tt.ok {
			t.Errorf("CheckLabel(%q, %q) = %v, want ok %v", tt.key, tt.value, err, tt.ok)
		}
	}
}

func TestZoneName(t *testing.T) {
	for url, want := range map[string]string{
		"https://compute.googleapis.com/compute/v1/projects/p/zones/us-west1-a": "us-west1-a",
		"us-west1-a": "us-west1-a",
		"https://x/projects/p/zones/us-west1-a\nHost *\n  ProxyCommand touch /tmp/x": "us-west1-a\nHost *\n  ProxyCommand touch /tmp/x",
		"https://x/projects/p/zones/../../tmp/x":                                     "../../tmp/x",
	} {
		if got := ZoneName(url); got != want {
			t.Errorf("ZoneName(%q) = %q, want %q", url, got, want)
		}
	}
}

// TestAPIPathsRefuseHostileNames checks that no call sends a request for a
// name outside the grammar: ".." would otherwise reach another resource.
func TestAPIPathsRefuseHostileNames(t *testing.T) {
	var requests []string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		requests = append(requests, r.URL.Path)
		http.NotFound(w, r)
	})
	ctx := testContext(t)
	for _, bad := range []string{"..", ".", "a/../b", "n\nx"} {
		calls := map[string]error{}
		_, calls["Instance name"] = c.Instance(ctx, "us-west1-a", bad)
		_, calls["Instance zone"] = c.Instance(ctx, bad, "n")
		_, calls["HostKeys"] = c.HostKeys(ctx, "us-west1-a", bad)
		calls["SetInstanceMetadata"] = c.SetInstanceMetadata(ctx, "us-west1-a", bad, &Metadata{})
		_, calls["UpdateInstanceMetadata"] = c.UpdateInstanceMetadata(ctx, bad, "n", nil, func(*Metadata) (bool, error) { return true, nil })
		if bad == "." || bad == ".." { // operation names are only kept one segment
			calls["wait"] = c.wait(ctx, "", &operation{Name: bad})
		}
		for call, err := range calls {
			var ne *InvalidNameError
			if !errors.As(err, &ne) {
				t.Errorf("%s(%q) = %v, want an *InvalidNameError", call, bad, err)
			}
		}
	}
	pc := *c
	pc.ProjectID = ".."
	if _, err := pc.Project(ctx); err == nil {
		t.Error("project .. accepted")
	}
	if len(requests) > 0 {
		t.Errorf("requests were sent: %q", requests)
	}
}

// FuzzCheckName checks the grammar against a byte-by-byte reading of it:
// whatever passes is a short run of [a-z0-9-] that starts with a letter and
// does not end in '-', so it is inert in ssh_config, known_hosts, sh and
// URL paths. A label value that passes has no ASCII but [a-z0-9_-].
func FuzzCheckName(f *testing.F) {
	for _, s := range hostileNames {
		f.Add(s)
	}
	f.Add("gke-cluster-default-pool-3e89aeb0-b47k")
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) >= 1 && len(s) <= 63 && s[0] >= 'a' && s[0] <= 'z' && s[len(s)-1] != '-'
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				want = false
			}
		}
		if got := CheckName(s) == nil; got != want {
			t.Fatalf("CheckName(%q) ok = %v, want %v", s, got, want)
		}
		if (CheckZone(s) == nil) != want {
			t.Fatalf("CheckZone(%q) disagrees with CheckName", s)
		}
		if CheckLabel("k", s) == nil {
			for _, r := range s {
				if r < 0x80 && !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
					t.Fatalf("label value %q passed with %q", s, r)
				}
			}
			if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 63 {
				t.Fatalf("label value %q passed", s)
			}
		}
	})
}
