//go:build unix

package emulator

import (
	"context"
	"slices"
	"testing"

	compute "google.golang.org/api/compute/v1"
)

// TestListFilter: the emulator reads the Compute filter grammar (labels,
// nested and repeated fields, AND/OR/NOT, ":" and ":*", comparisons, the
// regular-expression form), through Google's own client.
func TestListFilter(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 24})
	svc := computeClient(t, hs, srv.Token())
	stopped, _ := gkeNodeName(0)
	if err := srv.Node(stopped).SetStatus("TERMINATED"); err != nil {
		t.Fatal(err)
	}
	// Nodes 20-23: default-pool in us-west1-c, then pool-1 in a, b and c.
	n1, _ := gkeNodeName(1)
	n20, _ := gkeNodeName(20)
	n21, _ := gkeNodeName(21)
	n22, _ := gkeNodeName(22)
	n23, _ := gkeNodeName(23)
	pool1 := []string{n21, n22, n23}
	cases := []struct {
		filter string
		want   []string // nil: count only
		count  int
	}{
		{filter: "labels.goog-k8s-node-pool-name=pool-1", want: pool1},
		{filter: `labels.goog-k8s-node-pool-name = "pool-1"`, want: pool1},
		{filter: `(labels.goog-k8s-cluster-name = "cluster") (labels.goog-k8s-node-pool-name = "pool-1")`, want: pool1},
		{filter: "labels.goog-k8s-node-pool-name = pool-1 AND zone : us-west1-c", want: []string{n23}},
		{filter: "labels.goog-k8s-node-pool-name = pool-1 OR name = " + n20, want: []string{n20, n21, n22, n23}},
		{filter: "NOT labels.goog-k8s-node-pool-name = default-pool", want: pool1},
		{filter: "-labels.goog-k8s-node-pool-name = default-pool", want: pool1},
		{filter: "labels.goog-k8s-node-pool-name != default-pool", want: pool1},
		{filter: "labels.goog-gke-node:*", count: 24},
		{filter: "labels.owner:*", count: 0},
		{filter: "status = RUNNING", count: 23},
		{filter: "status != RUNNING", want: []string{stopped}},
		{filter: "name : 41ef50b9", count: 10},
		{filter: "name = gke-cluster-pool-1-*", want: pool1},
		{filter: "networkInterfaces.networkIP = 10.128.0.4", want: []string{n1}},
		{filter: "disks.boot = true", count: 24},
		{filter: "id > 0", count: 24},
		{filter: "name eq gke-cluster-pool-1-.*", want: pool1},
		{filter: "name eq " + n21 + "|" + n22, want: []string{n21, n22}},
		{filter: "(name eq .*-pool-1-.*) (status eq RUNNING)", want: pool1},
		{filter: "name ne gke-cluster-default-pool-.*", want: pool1},
	}
	for _, tc := range cases {
		t.Run(tc.filter, func(t *testing.T) {
			var found []string
			err := svc.Instances.AggregatedList(srv.ProjectName()).Filter(tc.filter).
				Pages(context.Background(), func(l *compute.InstanceAggregatedList) error {
					for _, sl := range l.Items {
						for _, in := range sl.Instances {
							found = append(found, in.Name)
						}
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(found)
			if tc.want != nil {
				want := slices.Sorted(slices.Values(tc.want))
				if !slices.Equal(found, want) {
					t.Errorf("found %v\nwant  %v", found, want)
				}
			} else if len(found) != tc.count {
				t.Errorf("found %d, want %d", len(found), tc.count)
			}
		})
	}
	for _, bad := range []string{"name ~ x", "name =", "(name = x", "name eq x AND status = RUNNING", `name = "x`, "name ! x"} {
		_, err := svc.Instances.AggregatedList(srv.ProjectName()).Filter(bad).Do()
		wantAPIError(t, err, 400, "invalid")
	}
}

// FuzzListFilter: any filter text is parsed or refused without a panic,
// and a parsed filter evaluates on an instance without one.
func FuzzListFilter(f *testing.F) {
	for _, seed := range []string{
		"labels.goog-k8s-node-pool-name=pool-1",
		`(labels.a = "x") (status != RUNNING) OR NOT name : gke`,
		"name eq ^(a|b)$",
		"-labels.owner:* AND id >= 3",
		`name = "un\"terminated`,
	} {
		f.Add(seed)
	}
	obj := filterObject(mustMarshal(&compute.Instance{Name: "gke-a", Status: "RUNNING", Id: 7, Labels: map[string]string{"a": "x"},
		NetworkInterfaces: []*compute.NetworkInterface{{NetworkIP: "10.0.0.1"}}}))
	f.Fuzz(func(t *testing.T, s string) {
		x, err := parseListFilter(s)
		if err == nil && x != nil {
			x.eval(obj)
		}
	})
}

// TestListFilterSeesChange: a filter reads an instance as it is now, not as
// it was when a filter first read it (the decoded form is kept per
// rendering).
func TestListFilterSeesChange(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 3})
	svc := computeClient(t, hs, srv.Token())
	name, _ := gkeNodeName(1)
	running := func() int {
		t.Helper()
		n := 0
		err := svc.Instances.AggregatedList(srv.ProjectName()).Filter("status = RUNNING").Pages(context.Background(), func(l *compute.InstanceAggregatedList) error {
			for _, sl := range l.Items {
				n += len(sl.Instances)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := running(); n != 3 {
		t.Fatalf("%d running, want 3", n)
	}
	if err := srv.Node(name).SetStatus("TERMINATED"); err != nil {
		t.Fatal(err)
	}
	if n := running(); n != 2 {
		t.Errorf("%d running after one stopped, want 2", n)
	}
}
