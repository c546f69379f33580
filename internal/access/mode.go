package access

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gkessh/gkessh/internal/gce"
)

// ModeOf says how inst takes keys, deciding as its guest agent does, since
// the agent is what ignores metadata keys under OS Login: an instance
// enable-oslogin that parses as a boolean wins, even when false, otherwise
// the project's value that parses. (gcloud differs only on an unparsable
// instance value, which it reads as false.) Windows images never use OS
// Login. Either argument may be nil: a nil instance asks about the
// project's default.
func ModeOf(inst *gce.Instance, proj *gce.Project) Mode {
	if inst != nil && isWindows(inst) {
		return MetadataKeys
	}
	if inst != nil {
		if b, ok := agentBool(inst.Metadata, gce.KeyEnableOSLogin); ok {
			return modeOf(b)
		}
	}
	if proj != nil {
		b, _ := agentBool(proj.CommonInstanceMetadata, gce.KeyEnableOSLogin)
		return modeOf(b)
	}
	return MetadataKeys
}

func modeOf(osLogin bool) Mode {
	if osLogin {
		return OSLogin
	}
	return MetadataKeys
}

// Extras names the OS Login features on for the instance that need more
// than a key in the login profile (gcloud's rule: the instance's value
// wins, else the project's): 2-step verification, security keys,
// certificates.
func Extras(inst *gce.Instance, proj *gce.Project) []string {
	var on []string
	for _, f := range []struct{ key, what string }{
		{"enable-oslogin-2fa", "2-step verification (enable-oslogin-2fa)"},
		{"enable-oslogin-sk", "security keys (enable-oslogin-sk)"},
		{"enable-oslogin-certificates", "OS Login certificates (enable-oslogin-certificates)"},
	} {
		if gce.FeatureEnabled(inst, proj, f.key) {
			on = append(on, f.what)
		}
	}
	return on
}

// ExtrasError is a node under OS Login with features that need more than a
// key in the login profile (Extras), which gkessh does not support.
type ExtrasError struct{ Extras []string }

func (e *ExtrasError) Error() string {
	return fmt.Sprintf("OS Login with %s is on, which gkessh does not support", strings.Join(e.Extras, ", "))
}

// agentBool reads a metadata flag as the Go guest agent does: the value
// exactly as stored, through strconv.ParseBool; ok is false when the key
// is missing or its value does not parse.
func agentBool(md *gce.Metadata, key string) (value, ok bool) {
	v, found := gce.MetadataValue(md, key)
	if !found {
		return false, false
	}
	b, err := strconv.ParseBool(v)
	return b, err == nil
}

func isWindows(inst *gce.Instance) bool {
	for _, d := range inst.Disks {
		if !d.Boot {
			continue
		}
		for _, f := range d.GuestOsFeatures {
			if f.Type == "WINDOWS" {
				return true
			}
		}
	}
	return false
}

// OSLoginNote is what to tell a user about metadata keys where OS Login
// is on.
const OSLoginNote = "OS Login is enabled (enable-oslogin=TRUE), so the guest ignores ssh-keys metadata: " +
	"keys go into your OS Login profile instead, or set enable-oslogin=FALSE on the instance"

// ErrOSLogin is Plan's refusal of a node under OS Login when
// Config.NoOSLogin is set.
var ErrOSLogin = errors.New(OSLoginNote)
