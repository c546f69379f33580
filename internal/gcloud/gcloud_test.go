package gcloud

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func envOf(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUnixConfigDir(t *testing.T) {
	got, err := unixConfigDir("/home/ann")
	if want := filepath.Join("/home/ann", ".config", "gcloud"); err != nil || got != want {
		t.Errorf("unixConfigDir = %q, %v; want %q", got, err, want)
	}
	if _, err := unixConfigDir(""); err == nil {
		t.Error("unixConfigDir with no home: want an error")
	}
}

func TestWindowsConfigDir(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"APPDATA": `C:\Users\ann\AppData\Roaming`}, `C:\Users\ann\AppData\Roaming\gcloud`},
		{map[string]string{"APPDATA": "", "SystemDrive": "D:"}, `D:\gcloud`},
		{map[string]string{}, `C:\gcloud`},
	}
	for _, tc := range cases {
		if got := windowsConfigDir(envOf(tc.env)); got != tc.want {
			t.Errorf("windowsConfigDir(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// TestConfigDir checks the directory this OS resolves, and that
// CLOUDSDK_CONFIG wins and XDG_CONFIG_HOME does not count.
func TestConfigDir(t *testing.T) {
	env := map[string]string{"HOME": "/home/ann", "XDG_CONFIG_HOME": "/xdg", "APPDATA": `C:\roaming`}
	want := filepath.Join("/home/ann", ".config", "gcloud")
	if runtime.GOOS == "windows" {
		want = `C:\roaming\gcloud`
	}
	if got, err := ConfigDir(envOf(env)); err != nil || got != want {
		t.Errorf("ConfigDir = %q, %v; want %q", got, err, want)
	}
	env["CLOUDSDK_CONFIG"] = "/elsewhere"
	if got, _ := ConfigDir(envOf(env)); got != "/elsewhere" {
		t.Errorf("ConfigDir with CLOUDSDK_CONFIG = %q, want /elsewhere", got)
	}
}

// TestLoadIgnoresXDG: with XDG_CONFIG_HOME pointing elsewhere (where
// os.UserConfigDir looks), the project in ~/.config/gcloud is found.
func TestLoadIgnoresXDG(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no ~/.config/gcloud")
	}
	home := t.TempDir()
	write(t, filepath.Join(home, ".config", "gcloud", "configurations", "config_default"), "[core]\nproject = p-home\n")
	xdg := t.TempDir()
	write(t, filepath.Join(xdg, "gcloud", "configurations", "config_default"), "[core]\nproject = p-xdg\n")
	c, err := Load(envOf(map[string]string{"HOME": home, "XDG_CONFIG_HOME": xdg}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Project(); got != "p-home" {
		t.Errorf("Project = %q, want p-home", got)
	}
}

func TestLoadActiveConfiguration(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "configurations", "config_default"), "[core]\nproject = p-default\n")
	write(t, filepath.Join(dir, "configurations", "config_work"), "[core]\nproject = p-work\naccount = ann@example.com\n[auth]\nimpersonate_service_account = sa@p.iam.gserviceaccount.com\n")
	cases := []struct {
		name        string
		activeFile  string // "" leaves no active_config
		env         map[string]string
		wantName    string
		wantProject string
	}{
		{"no active_config", "", nil, "default", "p-default"},
		{"active_config", "work", nil, "work", "p-work"},
		{"active_config with newline", "work\n", nil, "work", "p-work"},
		{"env beats file", "default", map[string]string{"CLOUDSDK_ACTIVE_CONFIG_NAME": "work"}, "work", "p-work"},
		{"invalid name falls back", "../x", nil, "default", "p-default"},
		{"missing configuration", "gone", nil, "gone", ""},
		{"env property beats file", "work", map[string]string{"CLOUDSDK_CORE_PROJECT": "p-env"}, "work", "p-env"},
		{"empty env property unsets", "work", map[string]string{"CLOUDSDK_CORE_PROJECT": ""}, "work", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "active_config"))
			if tc.activeFile != "" {
				write(t, filepath.Join(dir, "active_config"), tc.activeFile)
			}
			env := map[string]string{"CLOUDSDK_CONFIG": dir}
			for k, v := range tc.env {
				env[k] = v
			}
			c, err := Load(envOf(env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != tc.wantName || c.Project() != tc.wantProject {
				t.Errorf("Name, Project = %q, %q; want %q, %q", c.Name, c.Project(), tc.wantName, tc.wantProject)
			}
		})
	}
}

func TestLoadBadFile(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "configurations", "config_default"), "project = p\n")
	if _, err := Load(envOf(map[string]string{"CLOUDSDK_CONFIG": dir})); err == nil {
		t.Error("Load of a file gcloud cannot parse: want an error")
	}
}

func TestSource(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "configurations", "config_default"), "[auth]\naccess_token_file = /t\n")
	c, err := Load(envOf(map[string]string{"CLOUDSDK_CONFIG": dir, "CLOUDSDK_CORE_ACCOUNT": "a@b"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ section, name, want string }{
		{"auth", "access_token_file", `gcloud configuration "default"`},
		{"core", "account", "CLOUDSDK_CORE_ACCOUNT"},
		{"core", "project", ""},
	} {
		if got := c.Source(tc.section, tc.name); got != tc.want {
			t.Errorf("Source(%s/%s) = %q, want %q", tc.section, tc.name, got, tc.want)
		}
	}
}

func TestStoredCredentials(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "legacy_credentials", "ann@example.com", "adc.json"), `{"type":"authorized_user"}`)
	write(t, filepath.Join(dir, "legacy_credentials", "principal", "adc.json"), `{"type":"external_account"}`)
	c, err := Load(envOf(map[string]string{"CLOUDSDK_CONFIG": dir}))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		account, want string
		err           error
	}{
		{"ann@example.com", `{"type":"authorized_user"}`, nil},
		{"princ:ipal", `{"type":"external_account"}`, nil}, // gcloud drops colons
		{"bob@example.com", "", ErrNoStoredCredentials},
		{"", "", ErrNoStoredCredentials},
		{"../ann@example.com", "", ErrNoStoredCredentials}, // stays inside legacy_credentials
	}
	for _, tc := range cases {
		b, err := c.StoredCredentials(tc.account)
		if string(b) != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("StoredCredentials(%q) = %q, %v; want %q, %v", tc.account, b, err, tc.want, tc.err)
		}
	}
}
