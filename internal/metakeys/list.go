package metakeys

import (
	"strings"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
)

// Entries lists the ssh-keys lines of the project and, when inst is not
// nil, of the instance, in metadata order. Blank lines are left out.
func Entries(proj *gce.Project, inst *gce.Instance) []keys.Entry {
	var out []keys.Entry
	add := func(scope, instance string, md *gce.Metadata) {
		for _, key := range []string{keys.MetadataKey, keys.LegacyMetadataKey} {
			value, _ := gce.MetadataValue(md, key)
			for i, l := range keys.ParseLines(value) {
				if strings.TrimSpace(l.Raw) == "" {
					continue
				}
				out = append(out, keys.Entry{Scope: scope, Instance: instance, Item: key, LineNo: i + 1, Line: l})
			}
		}
	}
	if proj != nil {
		add(keys.ScopeProject, "", proj.CommonInstanceMetadata)
	}
	if inst != nil {
		add(keys.ScopeInstance, inst.Name, inst.Metadata)
	}
	return out
}
