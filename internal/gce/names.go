package gce

import (
	"fmt"
	"regexp"
	"strconv"
	"sync"
)

// Names that come from the API end up in ~/.ssh/config, known_hosts, shell
// command lines and URL paths. GCE itself only allows the grammars below, but
// a hostile or intercepted endpoint is not bound by them, so gkessh checks
// every name, zone and label against them before using it anywhere.
var (
	// nameRE is GCE's resource name grammar (RFC 1035 labels), which
	// instance and zone names follow.
	nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`) })
	// projectRE is gcloud's project ID rule (core/properties.py
	// _VALID_PROJECT_REGEX): an optional domain prefix ending in ':'
	// (google.com:), then lowercase letters, digits and '-', not at
	// either end; a leading digit for legacy IDs.
	projectRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:(?:[-a-z0-9]{1,63}\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)$`)
	})
	// namePatternRE is a name with ssh_config wildcards, for one Host
	// entry that matches many instances.
	namePatternRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[-a-z0-9*?]{1,63}$`) })
	// Label keys and values: lowercase letters (international ones too),
	// digits, '_' and '-', at most 63 characters; a key starts with a
	// letter and is not empty. Compiled on first use: the Unicode classes
	// cost 12 ms and 8 MB, which every gkessh process (each ProxyCommand)
	// would pay at start though few check a label.
	labelKeyRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$`) })
	labelValueRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$`) })
)

// InvalidNameError is a name, zone, label or pattern outside GCE's grammar.
type InvalidNameError struct {
	Kind  string // "instance name", "zone", "label", "name pattern", "project ID", "path segment"
	Value string
}

func (e *InvalidNameError) Error() string {
	// QuoteToASCII shows control characters, quotes and look-alike
	// letters for what they are.
	return fmt.Sprintf("invalid %s %s: not a GCE %s", e.Kind, strconv.QuoteToASCII(e.Value), e.Kind)
}

// CheckName checks an instance name: [a-z]([-a-z0-9]{0,61}[a-z0-9])?.
func CheckName(name string) error {
	if !nameRE().MatchString(name) {
		return &InvalidNameError{"instance name", name}
	}
	return nil
}

// CheckZone checks a zone name such as us-west1-a, which follows the same
// grammar as instance names.
func CheckZone(zone string) error {
	if !nameRE().MatchString(zone) {
		return &InvalidNameError{"zone", zone}
	}
	return nil
}

// CheckProject checks a project ID as gcloud checks its project property.
func CheckProject(p string) error {
	if !projectRE().MatchString(p) {
		return &InvalidNameError{"project ID", p}
	}
	return nil
}

// CheckNamePattern checks an instance name pattern with ssh's wildcards '*'
// and '?', such as gke-cluster-*.
func CheckNamePattern(p string) error {
	if !namePatternRE().MatchString(p) {
		return &InvalidNameError{"name pattern", p}
	}
	return nil
}

// CheckLabel checks a label's key and value.
func CheckLabel(key, value string) error {
	if !labelKeyRE().MatchString(key) || !labelValueRE().MatchString(value) {
		return &InvalidNameError{"label", key + "=" + value}
	}
	return nil
}

// segment checks an element of an API path: anything but "", "." and ".."
// stays one segment once escaped, so it cannot reach another resource.
func segment(s string) error {
	if s == "" || s == "." || s == ".." {
		return &InvalidNameError{"path segment", s}
	}
	return nil
}
