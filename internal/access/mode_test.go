package access

import (
	"testing"

	"github.com/gkessh/gkessh/internal/gce"
)

func md(kv ...string) *gce.Metadata {
	m := &gce.Metadata{}
	for i := 0; i < len(kv); i += 2 {
		m.Items = append(m.Items, &gce.MetadataItems{Key: kv[i], Value: &kv[i+1]})
	}
	return m
}

func TestModeOf(t *testing.T) {
	windows := &gce.Instance{Metadata: md("enable-oslogin", "TRUE"), Disks: []*gce.AttachedDisk{
		{Boot: true, GuestOsFeatures: []*gce.GuestOsFeature{{Type: "WINDOWS"}}}}}
	tests := []struct {
		name string
		inst *gce.Instance
		proj *gce.Project
		want Mode
	}{
		{"nothing set", &gce.Instance{}, &gce.Project{}, MetadataKeys},
		{"project on", &gce.Instance{}, &gce.Project{CommonInstanceMetadata: md("enable-oslogin", "TRUE")}, OSLogin},
		{"instance on", &gce.Instance{Metadata: md("enable-oslogin", "true")}, &gce.Project{}, OSLogin},
		{"instance off wins over project on", &gce.Instance{Metadata: md("enable-oslogin", "false")}, &gce.Project{CommonInstanceMetadata: md("enable-oslogin", "TRUE")}, MetadataKeys},
		// The guest agent skips a value that does not parse and falls back to the project's.
		{"unparsable instance value: the project's counts", &gce.Instance{Metadata: md("enable-oslogin", "yes please")}, &gce.Project{CommonInstanceMetadata: md("enable-oslogin", "TRUE")}, OSLogin},
		{"spaces do not parse", &gce.Instance{Metadata: md("enable-oslogin", " false")}, &gce.Project{CommonInstanceMetadata: md("enable-oslogin", "TRUE")}, OSLogin},
		{"unparsable project value is off", &gce.Instance{}, &gce.Project{CommonInstanceMetadata: md("enable-oslogin", "on")}, MetadataKeys},
		{"GKE node under enforced OS Login", &gce.Instance{Metadata: md("enable-oslogin", "false")}, &gce.Project{CommonInstanceMetadata: md("enable-oslogin", "TRUE")}, MetadataKeys},
		{"no instance", nil, &gce.Project{CommonInstanceMetadata: md("enable-oslogin", "1")}, OSLogin},
		{"windows never", windows, nil, MetadataKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ModeOf(tt.inst, tt.proj); got != tt.want {
				t.Fatalf("ModeOf = %v, want %v", got, tt.want)
			}
		})
	}
}
