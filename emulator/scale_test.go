//go:build unix

package emulator

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// TestScale200: 200 builtin-sshd nodes start quickly in one process, with
// a few file descriptors and goroutines per node and a bounded heap.
func TestScale200(t *testing.T) {
	if testing.Short() {
		t.Skip("200 nodes")
	}
	fds := func() int {
		ents, err := os.ReadDir("/dev/fd")
		if err != nil {
			t.Skipf("cannot count file descriptors: %v", err)
		}
		return len(ents)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fdBefore, gBefore := fds(), runtime.NumGoroutine()
	start := time.Now()
	srv, err := New(Config{Nodes: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	took := time.Since(start)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	perNodeFDs := float64(fds()-fdBefore) / 200
	perNodeG := float64(runtime.NumGoroutine()-gBefore) / 200
	heap := float64(after.HeapInuse-before.HeapInuse) / (1 << 20)
	t.Logf("200 nodes: %v, %.1f fds, %.1f goroutines per node, heap +%.1f MiB", took, perNodeFDs, perNodeG, heap)
	if perNodeFDs > 4 || perNodeG > 6 || heap > 64 {
		t.Errorf("per node %.1f fds, %.1f goroutines; heap +%.1f MiB: want at most 4, 6 and 64 MiB in all", perNodeFDs, perNodeG, heap)
	}
	if took > 30*time.Second {
		t.Errorf("200 nodes took %v to start", took)
	}
}

// TestListPages1200: instances.list and aggregatedList page as GCE does:
// at most 500 instances a page (maxResults 1000 is cut to 500, none means
// 500), nextPageToken to the next page, and every instance once in all.
// Google's own client follows the pages.
func TestListPages1200(t *testing.T) {
	if testing.Short() {
		t.Skip("1200 nodes")
	}
	srv, hs := newTestServer(t, Config{Nodes: 1200})
	svc := computeClient(t, hs, srv.Token())
	p := srv.ProjectName()
	first, err := svc.Instances.AggregatedList(p).MaxResults(1000).Do()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range first.Items {
		n += len(l.Instances)
	}
	if n != 500 || first.NextPageToken == "" {
		t.Fatalf("first page of maxResults 1000: %d instances, token %q; want 500 and a token", n, first.NextPageToken)
	}
	seen := map[string]int{}
	pages := 0
	err = svc.Instances.AggregatedList(p).Pages(context.Background(), func(l *compute.InstanceAggregatedList) error {
		pages++
		for scope, sl := range l.Items {
			if len(sl.Instances) == 0 && (sl.Warning == nil || sl.Warning.Code != "NO_RESULTS_ON_PAGE") {
				t.Errorf("page %d: %s has neither instances nor GCE's warning", pages, scope)
			}
			for _, in := range sl.Instances {
				seen[scope+"/"+in.Name]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 3 || len(seen) != 1200 {
		t.Errorf("aggregatedList: %d pages, %d instances; want 3 and 1200", pages, len(seen))
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s on %d pages", k, c)
		}
	}
	zone := "us-west1-a"
	var inZone int
	for k := range seen {
		if strings.HasPrefix(k, "zones/"+zone+"/") {
			inZone++
		}
	}
	got, listPages := 0, 0
	err = svc.Instances.List(p, zone).MaxResults(100).Pages(context.Background(), func(l *compute.InstanceList) error {
		listPages++
		if len(l.Items) > 100 {
			t.Errorf("list page of %d, asked for 100", len(l.Items))
		}
		got += len(l.Items)
		return nil
	})
	if err != nil || got != inZone || listPages != (inZone+99)/100 {
		t.Errorf("list %s by 100: %d instances in %d pages, %v; want %d", zone, got, listPages, err, inZone)
	}
	if _, err := svc.Instances.List(p, zone).PageToken("not-ours").Do(); err == nil {
		t.Error("a page token the emulator did not issue was accepted")
	}
}
