//go:build !windows

package gcloud

const reservedNames = false

// configDir takes the home directory from $HOME, as gcloud (Python's
// expanduser) does.
func configDir(env LookupEnv) (string, error) {
	home, _ := env("HOME")
	return unixConfigDir(home)
}
