//go:build unix

package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	compute "google.golang.org/api/compute/v1"
)

// variedNodes gives the nodes of srv metadata, labels and states whose
// encodings differ in what encoding/json must escape or omit.
func variedNodes(t *testing.T, srv *Server) []*Node {
	t.Helper()
	if _, err := srv.AddNode("plain-vm", "europe-west4-b"); err != nil {
		t.Fatal(err)
	}
	odd := "<script>&amp;\"quoted\" é漢 \u2028\u2029 \x01\t\n\\ "
	empty := ""
	var nodes []*Node
	for i, name := range srv.Nodes() {
		n := srv.Node(name)
		nodes = append(nodes, n)
		switch i % 4 {
		case 0:
			if err := srv.SetInstanceMetadata(name, map[string]*string{"odd": &odd, "empty": &empty}); err != nil {
				t.Fatal(err)
			}
		case 1:
			n.SetLabels(map[string]string{"a<b": odd, "empty": ""})
		case 2:
			if err := n.SetStatus("TERMINATED"); err != nil {
				t.Fatal(err)
			}
		case 3:
			n.SetLabels(nil)
		}
	}
	return nodes
}

// encodeAsBefore is how writeJSON encodes any answer it is not given
// encoded: what the list answers were before renderedInstance.
func encodeAsBefore(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// firstDiff shows where got first differs from want.
func firstDiff(got, want string) string {
	i := 0
	for i < min(len(got), len(want)) && got[i] == want[i] {
		i++
	}
	from := max(i-60, 0)
	return fmt.Sprintf("%d bytes, want %d; from byte %d:\n got %q\nwant %q", len(got), len(want), from, got[from:min(i+60, len(got))], want[from:min(i+60, len(want))])
}

// TestInstanceListEncoding checks that list and aggregatedList answers
// encoded around the kept instance encodings are byte for byte what
// encoding/json writes for the same resources.
func TestInstanceListEncoding(t *testing.T) {
	srv, _ := newTestServer(t, Config{Nodes: 5})
	nodes := variedNodes(t, srv)
	// Not valid UTF-8: encoding/json writes \ufffd, which decoding and
	// encoding again would not.
	nodes[3].SetLabels(map[string]string{"bad": "\xff"})
	enc := instanceJSON{}
	var insts []*compute.Instance
	for _, n := range nodes {
		ri := srv.instance(n)
		if got, want := string(ri.line), encodeAsBefore(t, ri.res); got != want {
			t.Fatalf("instance %s: %s", n.Name, firstDiff(got, want))
		}
		insts = append(insts, ri.res)
		enc.add(ri)
	}
	// An instance enc does not hold is encoded on the spot.
	insts = append(insts, &compute.Instance{Name: "unkept", Kind: "compute#instance"})

	lists := map[string]*compute.InstanceList{
		"empty":        {Kind: "compute#instanceList", Id: "projects/p/zones/z/instances", SelfLink: "https://x/zones/z/instances"},
		"one":          {Kind: "compute#instanceList", Items: insts[:1]},
		"all, a token": {Kind: "compute#instanceList", Id: "i", Items: insts, NextPageToken: "bmV4dDox", SelfLink: "s<&>"},
		"a warning": {Kind: "compute#instanceList", Items: insts[1:3], Warning: &compute.InstanceListWarning{
			Code: "UNREACHABLE", Message: "m<", Data: []*compute.InstanceListWarningData{{Key: "scope", Value: "zones/z"}}}},
	}
	for name, l := range lists {
		if got, want := string(enc.list(l)), encodeAsBefore(t, l); got != want {
			t.Errorf("list %s: %s", name, firstDiff(got, want))
		}
	}

	noResults := func(scope string) compute.InstancesScopedList {
		return compute.InstancesScopedList{Warning: &compute.InstancesScopedListWarning{Code: "NO_RESULTS_ON_PAGE",
			Message: "There are no results for scope '" + scope + "' on this page.",
			Data:    []*compute.InstancesScopedListWarningData{{Key: "scope", Value: scope}}}}
	}
	aggs := map[string]*compute.InstanceAggregatedList{
		"no items": {Kind: "compute#instanceAggregatedList", Id: "projects/p/aggregated/instances"},
		"scopes": {Kind: "compute#instanceAggregatedList", Id: "projects/p/aggregated/instances", NextPageToken: "bmV4dDoy", SelfLink: "s",
			Items: map[string]compute.InstancesScopedList{
				"zones/us-west1-b": {Instances: insts[2:]},
				"zones/us-west1-a": {Instances: insts[:2]},
				"zones/us-west1-c": noResults("zones/us-west1-c"),
				"zones/a<b":        {Instances: insts[1:2], Warning: noResults("zones/a<b").Warning},
			}},
		"unreachable": {Kind: "compute#instanceAggregatedList", Unreachables: []string{"zones/x", "zones/<y>"},
			Warning: &compute.InstanceAggregatedListWarning{Code: "UNREACHABLE", Message: "m"},
			Items:   map[string]compute.InstancesScopedList{"zones/x": noResults("zones/x")}},
	}
	for name, l := range aggs {
		if got, want := string(enc.aggregatedList(l)), encodeAsBefore(t, l); got != want {
			t.Errorf("aggregatedList %s: %s", name, firstDiff(got, want))
		}
	}
}

// TestInstanceListAnswers checks the compact list answers as served, page
// by page, against encoding/json's encoding of what they hold.
func TestInstanceListAnswers(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 5})
	variedNodes(t, srv)
	p := "/compute/v1/projects/" + srv.ProjectName()
	for _, tc := range []struct {
		path string
		v    any
	}{
		{p + "/aggregated/instances", new(compute.InstanceAggregatedList)},
		{p + "/aggregated/instances?maxResults=2", new(compute.InstanceAggregatedList)},
		{p + "/aggregated/instances?maxResults=2&pageToken=" + pageToken(4, 6), new(compute.InstanceAggregatedList)},
		{p + "/aggregated/instances?filter=status+eq+TERMINATED", new(compute.InstanceAggregatedList)},
		{p + "/zones/us-west1-a/instances", new(compute.InstanceList)},
		{p + "/zones/us-west1-a/instances?maxResults=1", new(compute.InstanceList)},
		{p + "/zones/us-west1-c/instances", new(compute.InstanceList)},
		{p + "/zones/europe-west4-b/instances/plain-vm", new(compute.Instance)},
	} {
		code, _, body := rawCall(t, hs, "GET", tc.path, "prettyPrint=false", srv.Token(), "")
		if code != 200 {
			t.Fatalf("GET %s: %d\n%s", tc.path, code, body)
		}
		if err := json.Unmarshal([]byte(body), tc.v); err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		if want := encodeAsBefore(t, tc.v); body != want {
			t.Errorf("GET %s: %s", tc.path, firstDiff(body, want))
		}
	}
}

// TestInstanceRenderedAfterChange checks that every way a node changes
// drops its kept rendering: an instance read or listed after the change
// shows it.
func TestInstanceRenderedAfterChange(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	svc := computeClient(t, hs, srv.Token())
	p := srv.ProjectName()
	n := srv.Node(srv.Nodes()[0])
	v := "v"
	for _, tc := range []struct {
		name    string
		change  func() error
		prepare func() // if set, runs before the instance is read
	}{
		// First: SetLabels below takes the node out of its cluster.
		{name: "joinCluster", change: func() error { srv.joinCluster(n); return nil }, prepare: func() {
			n.mu.Lock()
			n.tags = nil
			n.changed()
			n.mu.Unlock()
		}},
		{name: "setMetadata", change: func() error {
			in, err := svc.Instances.Get(p, n.Zone, n.Name).Do()
			if err != nil {
				return err
			}
			md := in.Metadata
			md.Items = append(md.Items, &compute.MetadataItems{Key: "k", Value: &v})
			_, err = svc.Instances.SetMetadata(p, n.Zone, n.Name, md).Do()
			return err
		}},
		{name: "SetInstanceMetadata", change: func() error { return srv.SetInstanceMetadata(n.Name, map[string]*string{"k": nil}) }},
		{name: "SetLabels", change: func() error { n.SetLabels(map[string]string{"l": "1"}); return nil }},
		{name: "SetStatus", change: func() error { return n.SetStatus("TERMINATED") }},
		{name: "SetNetworkIP", change: func() error { n.SetNetworkIP("10.9.9.9"); return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare()
			}
			before, err := svc.Instances.Get(p, n.Zone, n.Name).Do()
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			n.mu.Lock()
			want := string(mustMarshal(srv.renderInstance(n)))
			n.mu.Unlock()
			if want == mustJSON(t, before) {
				t.Fatal("the change changed nothing the instance shows")
			}
			got, err := svc.Instances.Get(p, n.Zone, n.Name).Do()
			if err != nil {
				t.Fatal(err)
			}
			if mustJSON(t, got) != want {
				t.Errorf("instances.get after the change:\n%s\nwant\n%s", mustJSON(t, got), want)
			}
			l, err := svc.Instances.AggregatedList(p).Do()
			if err != nil {
				t.Fatal(err)
			}
			if sl := l.Items["zones/"+n.Zone]; len(sl.Instances) != 1 || mustJSON(t, sl.Instances[0]) != want {
				t.Errorf("aggregatedList after the change:\n%s\nwant\n%s", mustJSON(t, sl), want)
			}
		})
	}
}
