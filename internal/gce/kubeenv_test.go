package gce

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestKubeEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want map[string]string
	}{
		{"GKE's form", "ALLOCATE_NODE_CIDRS: \"true\"\nCLUSTER_IP_RANGE: 10.4.0.0/14\nCONTAINER_RUNTIME: containerd\n",
			map[string]string{"ALLOCATE_NODE_CIDRS": "true", "CLUSTER_IP_RANGE": "10.4.0.0/14", "CONTAINER_RUNTIME": "containerd"}},
		// kube-up's build-kube-env writes every value through yaml-quote.
		{"kube-up's single quotes", "CONTAINER_RUNTIME: 'docker'\nCLUSTER_IP_RANGE: '10.244.0.0/16'\nNAME: 'it''s'\n",
			map[string]string{"CONTAINER_RUNTIME": "docker", "CLUSTER_IP_RANGE": "10.244.0.0/16", "NAME": "it's"}},
		{"double-quote escapes", `A: "x\ty\"z"`, map[string]string{"A": "x\ty\"z"}},
		{"bad double-quote escape", `A: "x\qy"`, map[string]string{"A": `x\qy`}},
		{"empty value", "A:\nB: ''\nC: \"\"", map[string]string{"A": "", "B": "", "C": ""}},
		{"no space after the colon", "A:b", map[string]string{"A": "b"}},
		{"colons in the value", "KUBELET_ARGS: --a=b:c --d=http://x", map[string]string{"KUBELET_ARGS": "--a=b:c --d=http://x"}},
		{"spaces kept inside", "A:   one  two   ", map[string]string{"A": "one  two"}},
		{"CRLF", "A: x\r\nB: 'y'\r\n", map[string]string{"A": "x", "B": "y"}},
		{"comments", "# a comment\nA: x # note\nB: 'y # kept'", map[string]string{"A": "x", "B": "y # kept"}},
		{"hash without a space is the value's", "A: x#y", map[string]string{"A": "x#y"}},
		{"continued value", "A: one\n  two\n\tthree\nB: z", map[string]string{"A": "one two three", "B": "z"}},
		{"continued quoted value", "A: 'one\n  two'", map[string]string{"A": "one two"}},
		{"indented line first", "  stray\nA: x", map[string]string{"A": "x"}},
		{"last of a key wins", "A: x\nA: y", map[string]string{"A": "y"}},
		{"mismatched quotes stay", `A: 'x"`, map[string]string{"A": `'x"`}},
		{"lone quote", "A: '", map[string]string{"A": "'"}},
		{"not a mapping line", "just words\n: nokey\nA: x", map[string]string{"A": "x"}},
		{"empty", "", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseKubeEnv(tc.in); !maps.Equal(got, tc.want) {
				t.Errorf("parseKubeEnv(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestKubeEnvItem(t *testing.T) {
	v := "CLUSTER_IP_RANGE: 10.4.0.0/14"
	md := &Metadata{Items: []*MetadataItems{{Key: "kube-labels"}, {Key: "kube-env", Value: &v}}}
	if env, ok := KubeEnv(md); !ok || env["CLUSTER_IP_RANGE"] != "10.4.0.0/14" {
		t.Errorf("KubeEnv = %q, %v", env, ok)
	}
	for _, md := range []*Metadata{nil, {}, {Items: []*MetadataItems{{Key: "kube-labels", Value: &v}}}} {
		if env, ok := KubeEnv(md); ok || env != nil {
			t.Errorf("KubeEnv(%+v) = %q, %v; want nothing", md, env, ok)
		}
	}
}

// FuzzKubeEnv: whatever a node's metadata holds, kube-env reads as keys
// that are single trimmed words of a line and values that, written back
// as KEY: "value", read back the same.
func FuzzKubeEnv(f *testing.F) {
	f.Add("CLUSTER_IP_RANGE: 10.4.0.0/14\nCONTAINER_RUNTIME: containerd\n")
	f.Add("A: 'it''s'\nB: \"\\u00e9\"\n  more\n# c\n")
	f.Fuzz(func(t *testing.T, s string) {
		env := parseKubeEnv(s)
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if k == "" || k != strings.TrimSpace(k) || strings.ContainsAny(k, ":\n") || k[0] == '#' {
				t.Fatalf("key %q read from %q", k, s)
			}
			b.WriteString(k + ": " + strconv.Quote(env[k]) + "\n")
		}
		if again := parseKubeEnv(b.String()); !maps.Equal(again, env) {
			t.Fatalf("%q read as %q, written back as %q, read again as %q", s, env, b.String(), again)
		}
	})
}
