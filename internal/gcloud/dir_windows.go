package gcloud

// reservedNames: Windows reserves CON, PRN, AUX and NUL as file names.
const reservedNames = true

// homeVar names the home directory, as Python's expanduser reads it.
const homeVar = "USERPROFILE"

func configDir(env LookupEnv) (string, error) { return windowsConfigDir(env), nil }
