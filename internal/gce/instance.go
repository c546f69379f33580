package gce

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
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
	v, _ := featureValue(inst, proj, key)
	return metadataTrue(v)
}

// featureValue is key's value on the instance when it sets key, else on
// the project, and whether either sets it.
func featureValue(inst *Instance, proj *Project, key string) (string, bool) {
	if inst != nil {
		if v, ok := MetadataValue(inst.Metadata, key); ok {
			return v, true
		}
	}
	if proj != nil {
		return MetadataValue(proj.CommonInstanceMetadata, key)
	}
	return "", false
}

// BlocksProjectSSHKeys reports whether the instance ignores project-wide
// ssh-keys. Only the instance's own flag counts, in every guest agent.
func BlocksProjectSSHKeys(inst *Instance) bool {
	v, _ := MetadataValue(inst.Metadata, KeyBlockProjectSSHKeys)
	return metadataTrue(v)
}

// GuestAttributesEnabled reports whether gcloud would read the instance's
// guest attributes (its published host keys): when enable-guest-attributes
// says "true", in any case, on the instance, or on the project when the
// instance does not set it. When neither sets it, gcloud reads none
// (ssh_utils.py _MetadataHasGuestAttributesEnabled gives None).
func GuestAttributesEnabled(inst *Instance, proj *Project) bool {
	v, _ := featureValue(inst, proj, KeyEnableGuestAttributes)
	return strings.EqualFold(v, "true")
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
