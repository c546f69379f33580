//go:build unix

package emulator

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"

	compute "google.golang.org/api/compute/v1"
)

// Instances are rendered and encoded once per change, not once per call:
// a 1000-node fleet lists every instance several times a minute, and
// encoding/json re-validates and re-compacts a Marshaler's output (every
// google.golang.org/api type is one) at each level of nesting, which made
// encoding a listing cost more than all the rest of the call. The list
// envelopes are written here around the kept encodings, as encoding/json
// writes them (TestInstanceListEncoding compares the two).

// renderedInstance is a node's instance resource and its encoding, kept
// until the node changes (Node.changed).
type renderedInstance struct {
	res  *compute.Instance // shared by every caller: read only
	line []byte            // json.Marshal(res) and a newline, as writeJSON sends it compact

	filtered sync.Once
	obj      any // filterObject(encoded()), once a filter asks: read only
}

// encoded is the instance's JSON without the newline.
func (ri *renderedInstance) encoded() []byte { return ri.line[:len(ri.line)-1] }

// object is the instance as a list filter sees it, decoded on the first
// filter and kept: a lookup by name filters every instance, which at 1000
// GKE nodes was 50 MB of JSON to decode for each login.
func (ri *renderedInstance) object() any {
	ri.filtered.Do(func() { ri.obj = filterObject(ri.encoded()) })
	return ri.obj
}

// changed drops the node's rendered instance; every change to what
// Server.instance renders calls it. Call with n.mu held.
func (n *Node) changed() { n.rendered = nil }

// rawJSON is an answer encoded already, compact and newline included:
// writeJSON sends it as it is, or indents it.
type rawJSON []byte

// instanceJSON holds the encodings of the instances a listing answers with.
type instanceJSON map[*compute.Instance][]byte

func (enc instanceJSON) add(ri *renderedInstance) { enc[ri.res] = ri.encoded() }

// appendInstances appends the instances as a JSON array.
func (enc instanceJSON) appendInstances(b []byte, insts []*compute.Instance) []byte {
	b = append(b, '[')
	for i, in := range insts {
		if i > 0 {
			b = append(b, ',')
		}
		j, ok := enc[in]
		if !ok {
			j = mustMarshal(in)
		}
		b = append(b, j...)
	}
	return append(b, ']')
}

// list encodes l as json.NewEncoder(w).Encode(l) would. l's
// ForceSendFields and NullFields must be empty (the emulator sets neither
// on a list).
func (enc instanceJSON) list(l *compute.InstanceList) rawJSON {
	o := jsonObject{b: make([]byte, 0, 1024+len(l.Items)*4096)}
	o.str("id", l.Id)
	if len(l.Items) > 0 {
		o.b = enc.appendInstances(o.key("items"), l.Items)
	}
	o.str("kind", l.Kind)
	o.str("nextPageToken", l.NextPageToken)
	o.str("selfLink", l.SelfLink)
	if l.Warning != nil {
		o.value("warning", l.Warning)
	}
	return o.end()
}

// aggregatedList is list for an aggregatedList answer. Its scoped lists'
// ForceSendFields and NullFields must be empty too.
func (enc instanceJSON) aggregatedList(l *compute.InstanceAggregatedList) rawJSON {
	n := 0
	for _, sl := range l.Items {
		n += len(sl.Instances)
	}
	o := jsonObject{b: make([]byte, 0, 1024+len(l.Items)*256+n*4096)}
	o.str("id", l.Id)
	if len(l.Items) > 0 {
		items := jsonObject{b: o.key("items")}
		for _, scope := range slices.Sorted(maps.Keys(l.Items)) {
			sl := l.Items[scope]
			if len(sl.Instances) == 0 {
				items.value(scope, sl)
				continue
			}
			inner := jsonObject{b: items.key(scope)}
			inner.b = enc.appendInstances(inner.key("instances"), sl.Instances)
			if sl.Warning != nil {
				inner.value("warning", sl.Warning)
			}
			items.b = inner.close()
		}
		o.b = items.close()
	}
	o.str("kind", l.Kind)
	o.str("nextPageToken", l.NextPageToken)
	o.str("selfLink", l.SelfLink)
	if len(l.Unreachables) > 0 {
		o.value("unreachables", l.Unreachables)
	}
	if l.Warning != nil {
		o.value("warning", l.Warning)
	}
	return o.end()
}

// jsonObject writes a JSON object member by member, as encoding/json
// does: no spaces, strings HTML-escaped.
type jsonObject struct {
	b    []byte
	more bool // a member was written
}

// key writes the opening of the object (first time), a separator and the
// member's key, and returns the buffer for its value.
func (o *jsonObject) key(k string) []byte {
	if o.more {
		o.b = append(o.b, ',')
	} else {
		o.b = append(o.b, '{')
		o.more = true
	}
	o.b = append(append(o.b, mustMarshal(k)...), ':')
	return o.b
}

// str writes a string member, skipping "" as omitempty does.
func (o *jsonObject) str(k, v string) {
	if v != "" {
		o.value(k, v)
	}
}

func (o *jsonObject) value(k string, v any) { o.b = append(o.key(k), mustMarshal(v)...) }

// close ends the object; an empty one is {}.
func (o *jsonObject) close() []byte {
	if !o.more {
		return append(o.b, '{', '}')
	}
	return append(o.b, '}')
}

// end closes the object and adds writeJSON's newline.
func (o *jsonObject) end() rawJSON { return append(o.close(), '\n') }

// mustMarshal is json.Marshal for values it cannot fail on: the Compute
// API's types and strings.
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("emulator: encoding " + err.Error())
	}
	return b
}
