//go:build !windows

package gcloud

const reservedNames = false

// homeVar names the home directory, as Python's expanduser reads it.
const homeVar = "HOME"

// configDir takes the home directory from $HOME, as gcloud (Python's
// expanduser) does.
func configDir(env LookupEnv) (string, error) {
	home, _ := env("HOME")
	return unixConfigDir(home)
}
