package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestProjectFromGcloudConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CLOUDSDK_CONFIG", dir)
	t.Setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "")
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("configurations/config_default", "[core]\nproject = from-default\n")
	write("configurations/config_work", "[compute]\nzone = us-west1-a\nproject = not-core\n[core]\naccount = me@example.com\nproject = from-work\n")
	tests := []struct {
		name, flag, active, env, want string
	}{
		{"flag wins", "flagged", "work", "", "flagged"},
		{"active config file", "", "work", "", "from-work"},
		{"env names the config", "", "work", "default", "from-default"},
		{"no active config means default", "", "", "", "from-default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "active_config"))
			if tt.active != "" {
				write("active_config", tt.active+"\n")
			}
			t.Setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", tt.env)
			got, err := projectOf(newDeps(Stdio{}), globalOptions{Project: tt.flag})
			if err != nil || got != tt.want {
				t.Fatalf("project() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("none anywhere", func(t *testing.T) {
		t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
		if got, err := projectOf(newDeps(Stdio{}), globalOptions{}); err == nil {
			t.Fatalf("project() = %q, want an error saying how to set one", got)
		}
	})
}

// TestProjectIgnoresXDG: gcloud reads ~/.config/gcloud whatever
// XDG_CONFIG_HOME says (os.UserConfigDir follows XDG_CONFIG_HOME).
func TestProjectIgnoresXDG(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("XDG_CONFIG_HOME is a Linux convention")
	}
	home, xdg := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", xdg)
	t.Setenv("CLOUDSDK_CONFIG", "") // empty counts as unset, as in gcloud
	t.Setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "")
	p := filepath.Join(home, ".config", "gcloud", "configurations", "config_default")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("[core]\nproject = from-home\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := projectOf(newDeps(Stdio{}), globalOptions{}); err != nil || got != "from-home" {
		t.Fatalf("project() = %q, %v; want from-home", got, err)
	}
}
