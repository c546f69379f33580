package gce

import (
	"encoding/base64"
	"testing"

	"github.com/gkessh/gkessh/internal/testkey"
)

func md(kv ...string) *Metadata {
	m := &Metadata{}
	for i := 0; i < len(kv); i += 2 {
		m.Items = append(m.Items, &MetadataItems{Key: kv[i], Value: &kv[i+1]})
	}
	return m
}

func TestBlocksProjectSSHKeys(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  bool
	}{{"TRUE", true}, {"true", true}, {"1", true}, {"false", false}, {"", false}, {"on", false}} {
		if got := BlocksProjectSSHKeys(&Instance{Metadata: md(KeyBlockProjectSSHKeys, tt.value)}); got != tt.want {
			t.Errorf("block-project-ssh-keys=%q: got %v, want %v", tt.value, got, tt.want)
		}
	}
}

// TestGuestAttributesEnabled is gcloud's rule for reading host keys
// (ssh_utils.py GetHostKeysFromGuestAttributes): the instance's
// enable-guest-attributes when set, else the project's; neither set reads
// nothing. A value counts when it lowers to "true".
func TestGuestAttributesEnabled(t *testing.T) {
	const unset = "<unset>"
	on := func(v string) *Metadata {
		if v == unset {
			return md("other", "x")
		}
		return md(KeyEnableGuestAttributes, v)
	}
	for _, tt := range []struct {
		inst, proj string
		want       bool
	}{
		{"TRUE", "TRUE", true},
		{"TRUE", "FALSE", true},
		{"TRUE", unset, true},
		{"FALSE", "TRUE", false},
		{"FALSE", "FALSE", false},
		{"FALSE", unset, false},
		{unset, "TRUE", true},
		{unset, "FALSE", false},
		{unset, unset, false},
		{"true", unset, true},
		{"True", unset, true},
		{"1", "TRUE", false}, // set, and not "true" to gcloud
		{"", "TRUE", false},  // set, empty
		{unset, " true", false},
	} {
		got := GuestAttributesEnabled(&Instance{Metadata: on(tt.inst)}, &Project{CommonInstanceMetadata: on(tt.proj)})
		if got != tt.want {
			t.Errorf("instance %q, project %q: got %v, want %v", tt.inst, tt.proj, got, tt.want)
		}
	}
	if GuestAttributesEnabled(&Instance{}, nil) || GuestAttributesEnabled(nil, nil) {
		t.Error("no metadata anywhere: got enabled")
	}
}

func TestParseHostKey(t *testing.T) {
	pub := testkey.Fixed(t, 0)
	b64 := base64.StdEncoding.EncodeToString(pub.Marshal())
	tests := []struct {
		name, typ, value string
		ok               bool
	}{
		{"plain", "ssh-ed25519", b64, true},
		{"trailing comment cut", "ssh-ed25519", b64 + " root@host", true},
		{"wrong type name", "ssh-rsa", b64, false},
		{"not base64", "ssh-ed25519", "!!" + b64, false},
		{"not a key", "ssh-ed25519", base64.StdEncoding.EncodeToString([]byte("hello")), false},
		{"empty", "ssh-ed25519", "  ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := parseHostKey(tt.typ, tt.value)
			if (k != nil) != tt.ok {
				t.Fatalf("parseHostKey = %v, want ok %v", k, tt.ok)
			}
		})
	}
}
