package sshconfig

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

var testBlock = Render([]Host{{
	Pattern: "gke-a",
	Options: [][2]string{{"User", "nat"}, {"ProxyCommand", "/bin/gkessh proxy %h %p"}},
}})

func TestRender(t *testing.T) {
	want := BeginMarker + "\nHost gke-a\n    User nat\n    ProxyCommand /bin/gkessh proxy %h %p\n" + EndMarker + "\n"
	if string(testBlock) != want {
		t.Fatalf("got\n%s\nwant\n%s", testBlock, want)
	}
}

func TestMergeAndRemove(t *testing.T) {
	other := Render([]Host{{Pattern: "gke-b", Options: [][2]string{{"User", "bob"}}}})
	tests := []struct {
		name, config, want string
	}{
		{"empty file", "", string(testBlock)},
		{"prepended to user config", "Host *\n  User me\n", string(testBlock) + "\nHost *\n  User me\n"},
		{"replaced in place", "Host x\n" + string(other) + "Host *\n", "Host x\n" + string(testBlock) + "Host *\n"},
		{"no trailing newline kept", "Host x\n  User y", string(testBlock) + "\nHost x\n  User y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Merge([]byte(tt.config), testBlock)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Merge got\n%q\nwant\n%q", got, tt.want)
			}
			again, err := Merge(got, testBlock)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("second Merge not idempotent: %q, %v", again, err)
			}
			removed, err := Remove(got)
			if err != nil {
				t.Fatal(err)
			}
			wantRemoved := strings.Replace(tt.config, string(other), "", 1)
			if string(removed) != wantRemoved {
				t.Fatalf("Remove got %q want %q", removed, wantRemoved)
			}
		})
	}
}

func TestMergeRefusesBrokenBlocks(t *testing.T) {
	for name, config := range map[string]string{
		"two blocks": string(testBlock) + string(testBlock),
		"no end":     BeginMarker + "\nHost x\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Merge([]byte(config), testBlock); err == nil {
				t.Fatal("Merge accepted a broken config")
			}
			if name == "two blocks" {
				if _, err := Remove([]byte(config)); !errors.Is(err, ErrSeveralBlocks) {
					t.Fatalf("Remove: %v", err)
				}
			}
		})
	}
}

func FuzzMerge(f *testing.F) {
	f.Add([]byte("Host *\n  User me\n"))
	f.Add(append([]byte("Host x\n"), testBlock...))
	f.Add([]byte(BeginMarker + "\n" + EndMarker))
	f.Fuzz(func(t *testing.T, config []byte) {
		merged, err := Merge(config, testBlock)
		if err != nil {
			return
		}
		blk, err := Block(merged)
		if err != nil || !bytes.Equal(blk, testBlock) {
			t.Fatalf("merged config's block = %q, %v", blk, err)
		}
		again, err := Merge(merged, testBlock)
		if err != nil || !bytes.Equal(again, merged) {
			t.Fatalf("not idempotent")
		}
		// Whatever stood outside the block is still there, in order.
		removed, err := Remove(merged)
		if err != nil {
			t.Fatal(err)
		}
		if old, _ := Block(config); old == nil && !bytes.Equal(removed, config) {
			t.Fatalf("Remove(Merge(c)) = %q, want %q", removed, config)
		}
	})
}
