package gcloud

// reservedNames: Windows reserves CON, PRN, AUX and NUL as file names.
const reservedNames = true

func configDir(env LookupEnv) (string, error) { return windowsConfigDir(env), nil }
