package gcloud

import (
	"errors"
	"os"
	"path/filepath"
)

// ConfigDir returns gcloud's configuration directory: CLOUDSDK_CONFIG when
// set, else the per-OS default (configDir in dir_*.go). Unlike
// os.UserConfigDir, gcloud ignores XDG_CONFIG_HOME and ~/Library.
func ConfigDir(env LookupEnv) (string, error) {
	if env == nil {
		env = os.LookupEnv
	}
	if d, ok := env("CLOUDSDK_CONFIG"); ok && d != "" {
		return d, nil
	}
	return configDir(env)
}

// unixConfigDir is gcloud's directory on Linux and macOS: ~/.config/gcloud.
func unixConfigDir(home string) (string, error) {
	if home == "" {
		return "", errors.New("gcloud: no home directory ($HOME is not set), and CLOUDSDK_CONFIG is not set")
	}
	return filepath.Join(home, ".config", "gcloud"), nil
}

// windowsConfigDir is gcloud's directory on Windows: %APPDATA%\gcloud, else
// %SystemDrive%\gcloud.
func windowsConfigDir(env LookupEnv) string {
	if d, ok := env("APPDATA"); ok && d != "" {
		return d + `\gcloud`
	}
	drive, ok := env("SystemDrive")
	if !ok || drive == "" {
		drive = "C:"
	}
	return drive + `\gcloud`
}
