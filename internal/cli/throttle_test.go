package cli

import (
	"testing"
	"time"
)

// TestThrottlingString: the summary's tail names each kind of wait only
// when there was one, with its count and time.
func TestThrottlingString(t *testing.T) {
	for _, tt := range []struct {
		api, tunnels int64
		apiWait      time.Duration
		tunnelWaits  []time.Duration
		want         string
	}{
		{want: ""},
		{api: 1, apiWait: 740 * time.Millisecond, want: "; throttled: 1 API call waited 700ms in all"},
		{tunnelWaits: []time.Duration{time.Second, 2200 * time.Millisecond}, want: "; throttled: 2 tunnels waited 3.2s in all"},
		{api: 15, apiWait: 9210 * time.Millisecond, tunnelWaits: []time.Duration{time.Second},
			want: "; throttled: 15 API calls waited 9.2s in all, 1 tunnel waited 1s in all"},
	} {
		th := throttling{api: func() (int64, time.Duration) { return tt.api, tt.apiWait }}
		for _, w := range tt.tunnelWaits {
			th.tunnel(w)
		}
		if got := th.String(); got != tt.want {
			t.Errorf("%d API calls, tunnel waits %v: %q, want %q", tt.api, tt.tunnelWaits, got, tt.want)
		}
	}
	if got := (&throttling{}).String(); got != "" {
		t.Errorf("no API client: %q, want nothing", got)
	}
}
