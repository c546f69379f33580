package audit

import (
	"maps"
	"testing"
)

func TestReadOnlyPort(t *testing.T) {
	for _, tc := range []struct {
		cfg  string
		port int
		ok   bool
	}{
		{"kind: KubeletConfiguration\nreadOnlyPort: 10255\n", 10255, true},
		{"kind: KubeletConfiguration\n", 0, true},
		{"readOnlyPort: 0\n", 0, true},
		{"readOnlyPort: \"10255\" # quoted\n", 10255, true},
		{"nested:\n  readOnlyPort: 10255\n", 0, true},
		{"readOnlyPort: ten\n", 0, false},
		{"readOnlyPort: 70000\n", 0, false},
	} {
		port, ok := ReadOnlyPort(tc.cfg)
		if port != tc.port || ok != tc.ok {
			t.Errorf("ReadOnlyPort(%q) = %d, %v; want %d, %v", tc.cfg, port, ok, tc.port, tc.ok)
		}
	}
}

func TestReadOnlyRequests(t *testing.T) {
	metrics := `# HELP kubelet_http_requests_total [ALPHA] Number of the http requests received since the server started
# TYPE kubelet_http_requests_total counter
kubelet_http_requests_total{long_running="false",method="GET",path="healthz",server_type="readonly"} 2
kubelet_http_requests_total{long_running="false",method="GET",path="pods",server_type="readonly"} 6
kubelet_http_requests_total{long_running="false",method="POST",path="pods",server_type="readonly"} 1
kubelet_http_requests_total{long_running="false",method="GET",path="metrics",server_type="readwrite"} 9
kubelet_http_requests_total{long_running="false",method="GET",path="stats",server_type="readonly"} 3 1700000000000
kubelet_http_requests_total{path="bad
kubelet_running_pods 5
`
	got := ReadOnlyRequests(metrics)
	want := map[string]int64{"healthz": 2, "pods": 7, "stats": 3}
	if !maps.Equal(got, want) {
		t.Errorf("ReadOnlyRequests = %v, want %v", got, want)
	}
}

// FuzzReadOnlyPort: any input gives a port in range, and a config that
// says readOnlyPort: N reads back as N.
func FuzzReadOnlyPort(f *testing.F) {
	for _, s := range []string{"readOnlyPort: 10255\n", "kind: KubeletConfiguration\n", "readOnlyPort: '0'", "readOnlyPort:\n", "readOnlyPort: -1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		port, ok := ReadOnlyPort(s)
		if port < 0 || port > 65535 || (!ok && port != 0) {
			t.Fatalf("ReadOnlyPort(%q) = %d, %v", s, port, ok)
		}
	})
}

// FuzzReadOnlyRequests: counts are never negative and only read-only
// series count.
func FuzzReadOnlyRequests(f *testing.F) {
	f.Add(`kubelet_http_requests_total{long_running="false",method="GET",path="pods",server_type="readonly"} 6`)
	f.Add(`kubelet_http_requests_total{path="a\"b",server_type="readonly"} 1e3`)
	f.Add(`kubelet_http_requests_total{server_type="readwrite"} 4`)
	f.Fuzz(func(t *testing.T, s string) {
		for path, n := range ReadOnlyRequests(s) {
			if n < 0 {
				t.Fatalf("ReadOnlyRequests(%q)[%q] = %d", s, path, n)
			}
		}
	})
}
