package fleet

import (
	"strings"
	"testing"
)

// TestCheckFilter: what cannot be a Compute API list filter is caught
// before any call; every form the API documents passes, for the API to
// judge.
func TestCheckFilter(t *testing.T) {
	for _, tc := range []struct {
		filter string
		ok     bool
	}{
		{"labels.goog-k8s-node-pool-name=default-pool", true},
		{"labels.goog-k8s-node-pool-name = default-pool", true},
		{`name = "gke-a" OR name = "gke-b"`, true},
		{"(status = RUNNING) (labels.env = prod)", true},
		{"NOT labels.env:*", true},
		{"-labels.env = prod", true},
		{"name eq gke-cluster-.*", true},
		{`name eq gke-\(x`, true},
		{"name ne (a|b)", true},
		{"cpuPlatform >= Intel", true},
		{`labels.a = "x)"`, true},
		{"", false},
		{"   ", false},
		{"^gke-cluster-", false},
		{"gke-*", false},
		{"gke-cluster-default-pool", false},
		{"(labels.a = b", false},
		{"labels.a = b)", false},
		{`labels.a = "b`, false},
		{"= b", false},
		{"*", false},
		{"eq", false},
		{"name eq", false},
	} {
		err := CheckFilter(tc.filter)
		if (err == nil) != tc.ok {
			t.Errorf("CheckFilter(%q) = %v, want ok %v", tc.filter, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "is not a Compute API list filter") {
			t.Errorf("CheckFilter(%q) = %v", tc.filter, err)
		}
	}
}

// FuzzCheckFilter: CheckFilter never panics, and what it accepts has a
// comparison and stays accepted in parentheses and joined to itself.
func FuzzCheckFilter(f *testing.F) {
	for _, s := range []string{"labels.a=b", "name eq x.*", `a = "b\"c"`, "(a:*) OR -b<3", "^x", "(a=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckFilter(s) != nil {
			return
		}
		if !strings.ContainsAny(s, "=<>:") && !strings.Contains(s, " eq ") && !strings.Contains(s, " ne ") && !strings.ContainsAny(s, "\t\n") {
			t.Fatalf("%q accepted with no comparison", s)
		}
		if strings.Count(s, `\`)%2 == 0 && !strings.HasSuffix(s, `\`) {
			if err := CheckFilter("(" + s + ")"); err != nil {
				t.Fatalf("%q accepted, but not in parentheses: %v", s, err)
			}
		}
	})
}
