package sshconfig

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func block(project, host string) []byte {
	return Render(project, []Host{{Pattern: host, Options: [][2]string{{"User", "nat"}, {"ProxyCommand", "/bin/gkessh proxy --project " + project + " %h %p"}}}})
}

var testBlock = block("p1", "gke-a")

// legacyBlock is a block an older gkessh wrote: one, for no project.
var legacyBlock = LegacyBegin + "\nHost gke-old\n    User nat\n" + LegacyEnd + "\n"

func TestRender(t *testing.T) {
	want := "# BEGIN gkessh managed block for project p1 ('gkessh config-ssh --project p1' rewrites it, 'gkessh config-ssh --remove --project p1' removes it)\n" +
		"Host gke-a\n    User nat\n    ProxyCommand /bin/gkessh proxy --project p1 %h %p\n" +
		"# END gkessh managed block for project p1\n"
	if string(testBlock) != want {
		t.Fatalf("got\n%s\nwant\n%s", testBlock, want)
	}
}

func TestMergeAndRemove(t *testing.T) {
	other := string(block("p1", "gke-b"))
	p2 := string(block("p2", "gke-c"))
	tests := []struct {
		name, config, want string
		removed            string // after Remove(p1); "" means config
	}{
		{"empty file", "", string(testBlock), ""},
		{"prepended to user config", "Host *\n  User me\n", string(testBlock) + "\nHost *\n  User me\n", ""},
		{"replaced in place", "Host x\n" + other + "Host *\n", "Host x\n" + string(testBlock) + "Host *\n", "Host x\nHost *\n"},
		{"no trailing newline kept", "Host x\n  User y", string(testBlock) + "\nHost x\n  User y", ""},
		// Another project's block stays as it is; this one goes after it.
		{"after another project's", p2 + "\nHost *\n", p2 + string(testBlock) + "\nHost *\n", ""},
		{"between others, replaced", p2 + other + "Host *\n", p2 + string(testBlock) + "Host *\n", p2 + "Host *\n"},
		{"another's, unterminated", strings.TrimSuffix(p2, "\n"), p2 + string(testBlock), p2},
		// An older gkessh's block is taken over.
		{"legacy block taken over", legacyBlock + "\nHost *\n", string(testBlock) + "\nHost *\n", "Host *\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Merge([]byte(tt.config), "p1", testBlock)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Merge got\n%q\nwant\n%q", got, tt.want)
			}
			again, err := Merge(got, "p1", testBlock)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("second Merge not idempotent: %q, %v", again, err)
			}
			removed, found, err := Remove(got, "p1")
			if err != nil || !found {
				t.Fatalf("Remove: %v, found %v", err, found)
			}
			want := tt.removed
			if want == "" {
				want = tt.config
			}
			if string(removed) != want {
				t.Fatalf("Remove got %q want %q", removed, want)
			}
			if _, found, _ := Remove(removed, "p1"); found {
				t.Fatal("Remove found p1's block twice")
			}
		})
	}
}

// TestRemoveOneProject: removing one project's block leaves the others'
// byte for byte.
func TestRemoveOneProject(t *testing.T) {
	p1, p2, p3 := string(block("p1", "a")), string(block("p2", "b")), string(block("p3", "c"))
	config := p1 + p2 + p3 + "\nHost *\n  User me\n"
	for _, tc := range []struct{ project, want string }{
		{"p1", p2 + p3 + "\nHost *\n  User me\n"},
		{"p2", p1 + p3 + "\nHost *\n  User me\n"},
		{"p3", p1 + p2 + "\nHost *\n  User me\n"},
	} {
		got, found, err := Remove([]byte(config), tc.project)
		if err != nil || !found || string(got) != tc.want {
			t.Errorf("Remove %s: %v %v\n%q\nwant\n%q", tc.project, found, err, got, tc.want)
		}
	}
	if got, found, err := Remove([]byte(config), "p4"); err != nil || found || string(got) != config {
		t.Errorf("Remove of a project with no block: found %v, %v, changed %v", found, err, string(got) != config)
	}
	if ps, err := Projects([]byte(config)); err != nil || !slices.Equal(ps, []string{"p1", "p2", "p3"}) {
		t.Errorf("Projects = %v, %v", ps, err)
	}
}

func TestMergeRefusesBrokenBlocks(t *testing.T) {
	for name, config := range map[string]string{
		"two blocks":         string(testBlock) + string(testBlock),
		"two legacy blocks":  legacyBlock + legacyBlock,
		"no end":             BeginMarker("p1") + "\nHost x\n",
		"another's end only": BeginMarker("p1") + "\n" + EndMarker("p2") + "\n",
		"nested":             BeginMarker("p2") + "\n" + string(testBlock) + EndMarker("p2") + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Merge([]byte(config), "p1", testBlock); err == nil {
				t.Fatal("Merge accepted a broken config")
			}
			if _, _, err := Remove([]byte(config), "p1"); err == nil {
				t.Fatal("Remove accepted a broken config")
			}
			if strings.HasPrefix(name, "two") {
				if _, _, err := Remove([]byte(config), "p1"); !errors.Is(err, ErrSeveralBlocks) {
					t.Fatalf("Remove: %v", err)
				}
			}
		})
	}
}

func FuzzMerge(f *testing.F) {
	f.Add([]byte("Host *\n  User me\n"))
	f.Add(append([]byte("Host x\n"), testBlock...))
	f.Add([]byte(BeginMarker("p1") + "\n" + EndMarker("p1")))
	f.Add(append(block("p2", "b"), "Host *\n"...))
	f.Add([]byte(legacyBlock))
	f.Fuzz(func(t *testing.T, config []byte) {
		before, _ := Projects(config)
		merged, err := Merge(config, "p1", testBlock)
		if err != nil {
			return
		}
		blk, err := Block(merged, "p1")
		if err != nil || !bytes.Equal(blk, testBlock) {
			t.Fatalf("merged config's block = %q, %v", blk, err)
		}
		again, err := Merge(merged, "p1", testBlock)
		if err != nil || !bytes.Equal(again, merged) {
			t.Fatalf("not idempotent")
		}
		// Other projects' blocks are still there, unchanged.
		for _, p := range before {
			if p == "p1" || p == "" {
				continue
			}
			was, _ := Block(config, p)
			now, err := Block(merged, p)
			// (An unterminated end marker last in the file gains its newline.)
			if err != nil || !bytes.Equal(bytes.TrimSuffix(was, []byte("\n")), bytes.TrimSuffix(now, []byte("\n"))) {
				t.Fatalf("block of %s changed: %q → %q (%v)", p, was, now, err)
			}
		}
		// Whatever stood outside the block is still there, in order.
		removed, found, err := Remove(merged, "p1")
		if err != nil || !found {
			t.Fatalf("Remove: %v, found %v", err, found)
		}
		if old, _ := Block(config, "p1"); old == nil && !bytes.Equal(removed, config) && !bytes.Equal(removed, append(bytes.Clone(config), '\n')) {
			t.Fatalf("Remove(Merge(c)) = %q, want %q", removed, config)
		}
	})
}
