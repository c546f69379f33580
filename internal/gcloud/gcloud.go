// Package gcloud reads the Google Cloud SDK's local configuration as gcloud
// itself resolves it: its configuration directory, the active named
// configuration, properties with their CLOUDSDK_SECTION_NAME environment
// overrides, and the credentials gcloud stores for a logged-in account. It
// never writes there and never runs gcloud.
package gcloud

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// LookupEnv is os.LookupEnv's signature; tests pass a map's lookup.
type LookupEnv func(key string) (string, bool)

// Config is gcloud's view of one user's settings: the configuration
// directory and the active configuration's properties.
type Config struct {
	// Dir is gcloud's configuration directory.
	Dir string
	// Name is the active configuration's name ("default" when none is set).
	Name  string
	props Properties
	env   LookupEnv
}

// configName is gcloud's rule for configuration names; a name breaking it
// in active_config makes gcloud ignore the file.
var configName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][-a-z0-9]*$`) })

// Load reads the active configuration. Missing files are not errors: a user
// who never ran gcloud has an empty configuration. A file gcloud itself
// could not parse is.
func Load(env LookupEnv) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	dir, err := ConfigDir(env)
	if err != nil {
		return nil, err
	}
	c := &Config{Dir: dir, env: env, props: Properties{}}
	name, ok := env("CLOUDSDK_ACTIVE_CONFIG_NAME")
	if !ok || name == "" {
		b, _ := os.ReadFile(filepath.Join(dir, "active_config"))
		name = strings.TrimSpace(string(b))
	}
	if !configName().MatchString(name) {
		name = "default"
	}
	c.Name = name
	path := filepath.Join(dir, "configurations", "config_"+name)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("gcloud: %w", err)
	}
	if c.props, err = ParseProperties(b); err != nil {
		return nil, fmt.Errorf("gcloud: %s: %w", path, err)
	}
	return c, nil
}

// Get returns the property section/name as gcloud would: the environment
// variable CLOUDSDK_SECTION_NAME when set (an empty one unsets it), else the
// active configuration's value, else "".
func (c *Config) Get(section, name string) string {
	if v, ok := c.env(EnvName(section, name)); ok {
		return v
	}
	return c.props.Get(section, name)
}

// Source says where Get found the property, for messages: the environment
// variable's name, the configuration file, or "" when unset.
func (c *Config) Source(section, name string) string {
	if _, ok := c.env(EnvName(section, name)); ok {
		return EnvName(section, name)
	}
	if c.props.Get(section, name) != "" {
		return fmt.Sprintf("gcloud configuration %q", c.Name)
	}
	return ""
}

// EnvName is the environment variable that overrides a property, as gcloud
// names it: auth/access_token_file → CLOUDSDK_AUTH_ACCESS_TOKEN_FILE.
func EnvName(section, name string) string {
	return "CLOUDSDK_" + strings.ToUpper(section) + "_" + strings.ToUpper(name)
}

// Account is core/account: the account gcloud uses.
func (c *Config) Account() string { return c.Get("core", "account") }

// Project is core/project.
func (c *Config) Project() string { return c.Get("core", "project") }

// ErrNoStoredCredentials means gcloud keeps no credentials file for the
// account: it never logged in, or logged out.
var ErrNoStoredCredentials = errors.New("gcloud has no stored credentials for the account")

// CredentialsFile returns the ADC-format file in which gcloud keeps the
// account's credentials, next to its credential database: gcloud writes it
// on every login (auth login, activate-service-account) and removes it on
// revoke.
func (c *Config) CredentialsFile(account string) string {
	return filepath.Join(c.Dir, "legacy_credentials", accountDir(account), "adc.json")
}

// StoredCredentials reads the account's credentials file: a JSON file in
// the format of Application Default Credentials (authorized_user,
// service_account, external_account). The bytes are secret.
func (c *Config) StoredCredentials(account string) ([]byte, error) {
	if account == "" {
		return nil, fmt.Errorf("gcloud: no active account (core/account): %w", ErrNoStoredCredentials)
	}
	if !pathSafe(account) {
		return nil, fmt.Errorf("gcloud: account %q is not an e-mail address: %w", account, ErrNoStoredCredentials)
	}
	b, err := os.ReadFile(c.CredentialsFile(account))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("gcloud: %s: %w", account, ErrNoStoredCredentials)
	}
	if err != nil {
		return nil, fmt.Errorf("gcloud: %w", err)
	}
	return b, nil
}

// ADCFile returns the well-known Application Default Credentials file that
// `gcloud auth application-default login` writes.
func (c *Config) ADCFile() string {
	return filepath.Join(c.Dir, "application_default_credentials.json")
}

// accountDir is the directory gcloud names after an account: colons
// removed, and on Windows a dot before names the system reserves.
func accountDir(account string) string {
	account = strings.ReplaceAll(account, ":", "")
	if reservedNames {
		up := strings.ToUpper(account)
		for _, p := range []string{"CON.", "PRN.", "AUX.", "NUL."} {
			if strings.HasPrefix(up, p) {
				return "." + account
			}
		}
	}
	return account
}

// pathSafe reports whether an account names one directory: gcloud does not
// check, but an e-mail address never holds a separator or is "..".
func pathSafe(account string) bool {
	return account != "" && account != "." && account != ".." && !strings.ContainsAny(account, `/\`)
}
