package gce

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Metadata keys gkessh reads.
const (
	KeyEnableOSLogin         = "enable-oslogin"
	KeyEnableGuestAttributes = "enable-guest-attributes"
	KeyBlockProjectSSHKeys   = "block-project-ssh-keys"
)

// FeatureEnabled reports whether a metadata flag is on for an instance the
// way gcloud decides it: the instance's value wins when set, even when it
// says false; otherwise the project's. Either argument may be nil.
func FeatureEnabled(inst *Instance, proj *Project, key string) bool {
	if inst != nil {
		if v, ok := MetadataValue(inst.Metadata, key); ok {
			return metadataTrue(v)
		}
	}
	if proj != nil {
		if v, ok := MetadataValue(proj.CommonInstanceMetadata, key); ok {
			return metadataTrue(v)
		}
	}
	return false
}

// OSLoginEnabled reports whether OS Login is on, in which case the guest
// ignores ssh-keys metadata. It decides as the guest agent does, since the
// agent is what ignores the keys: an instance value that parses as a
// boolean wins, even when false, otherwise the project's value that
// parses. (gcloud differs only on an unparsable instance value, which it
// reads as false.) GKE nodes set enable-oslogin=false, so they take
// metadata keys in projects that enforce OS Login. Windows images never
// use OS Login.
func OSLoginEnabled(inst *Instance, proj *Project) bool {
	if inst != nil && isWindows(inst) {
		return false
	}
	if inst != nil {
		if b, ok := agentBool(inst.Metadata, KeyEnableOSLogin); ok {
			return b
		}
	}
	if proj != nil {
		b, _ := agentBool(proj.CommonInstanceMetadata, KeyEnableOSLogin)
		return b
	}
	return false
}

// OSLoginExtras names the OS Login features on for the instance that
// need more than a key in the login profile (gcloud's rule: the instance's
// value wins, else the project's): 2-step verification, security keys,
// certificates.
func OSLoginExtras(inst *Instance, proj *Project) []string {
	var on []string
	for _, f := range []struct{ key, what string }{
		{"enable-oslogin-2fa", "2-step verification (enable-oslogin-2fa)"},
		{"enable-oslogin-sk", "security keys (enable-oslogin-sk)"},
		{"enable-oslogin-certificates", "OS Login certificates (enable-oslogin-certificates)"},
	} {
		if FeatureEnabled(inst, proj, f.key) {
			on = append(on, f.what)
		}
	}
	return on
}

// agentBool reads a metadata flag as the Go guest agent does: the value
// exactly as stored, through strconv.ParseBool; ok is false when the key
// is missing or its value does not parse.
func agentBool(md *Metadata, key string) (value, ok bool) {
	v, found := MetadataValue(md, key)
	if !found {
		return false, false
	}
	b, err := strconv.ParseBool(v)
	return b, err == nil
}

func isWindows(inst *Instance) bool {
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

// BlocksProjectSSHKeys reports whether the instance ignores project-wide
// ssh-keys. Only the instance's own flag counts, in every guest agent.
func BlocksProjectSSHKeys(inst *Instance) bool {
	v, _ := MetadataValue(inst.Metadata, KeyBlockProjectSSHKeys)
	return metadataTrue(v)
}

// GuestAttributesEnabled reports whether gcloud would read the instance's
// guest attributes (its published host keys): unless the instance turns
// them off. A project-wide setting is not visible without another call.
func GuestAttributesEnabled(inst *Instance) bool {
	v, set := MetadataValue(inst.Metadata, KeyEnableGuestAttributes)
	return !set || strings.EqualFold(v, "true")
}

// hostKeyTypes are the guest attribute keys gcloud trusts as host keys.
var hostKeyTypes = map[string]bool{
	ssh.KeyAlgoRSA:      true,
	ssh.KeyAlgoED25519:  true,
	ssh.KeyAlgoECDSA256: true,
}

// HostKeys returns the SSH host keys the instance's guest agent published as
// guest attributes (hostkeys/ssh-ed25519 …), keeping, as gcloud does, only
// known types whose value parses. No published keys gives (nil, nil).
func (c *Client) HostKeys(ctx context.Context, zone, name string) ([]ssh.PublicKey, error) {
	var ga guestAttributes
	path, err := c.instancePath(zone, name, "getGuestAttributes")
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, http.MethodGet, path, url.Values{"queryPath": {"hostkeys/"}}, nil, &ga); err != nil {
		// gcloud matches this text: the guest published nothing yet.
		if IsNotFound(err) && strings.Contains(err.Error(), "was not found") {
			return nil, nil
		}
		return nil, explain(err, "read host keys of instance "+name, "compute.instances.getGuestAttributes")
	}
	if ga.QueryValue == nil {
		return nil, nil
	}
	var keys []ssh.PublicKey
	for _, e := range ga.QueryValue.Items {
		if e.Namespace != "hostkeys" || !hostKeyTypes[e.Key] {
			continue
		}
		if k := parseHostKey(e.Key, e.Value); k != nil {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// parseHostKey decodes a guest attribute value: base64 of the SSH wire key,
// cut at the first whitespace like gcloud does. A value whose key type is not
// the attribute's is dropped rather than trusted under the wrong name.
func parseHostKey(typ, value string) ssh.PublicKey {
	fields := strings.Fields(value)
	if len(fields) == 0 {
		return nil
	}
	blob, err := base64.StdEncoding.DecodeString(fields[0])
	if err != nil {
		return nil
	}
	k, err := ssh.ParsePublicKey(blob)
	if err != nil || k.Type() != typ {
		return nil
	}
	return k
}
