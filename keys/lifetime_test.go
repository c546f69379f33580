package keys

import (
	"strings"
	"testing"
	"time"
)

// TestParseLifetime: gcloud's --ssh-key-expire-after grammar
// (arg_parsers.Duration over iso_duration.Duration.Parse).
func TestParseLifetime(t *testing.T) {
	const d = 24 * time.Hour
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"0", 0, ""},
		{"90", 90 * time.Second, ""},
		{"30m", 30 * time.Minute, ""},
		{"24h", d, ""},
		{"7d", 7 * d, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"P1D", d, ""},
		{"p1d", d, ""},
		{"PT1H30M", 90 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"P1M", time.Duration(365.2422 / 12 * float64(d)), ""},
		{"1M", time.Minute, ""},
		{"P1DT2M", d + 2*time.Minute, ""},
		{"2W", 14 * d, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"1,5h", 90 * time.Minute, ""},
		{"1500ms", 1500 * time.Millisecond, ""},
		{"+2s", 2 * time.Second, ""},
		{"500ms", 0, "shorter than a second"},
		{"-1h", 0, "negative"},
		{"", 0, "shorter than a second"},
		{"P", 0, "shorter than a second"},
		{"1", time.Second, ""},
		{"12x", 0, "unknown unit"},
		{"h", 0, "without a number"},
		{"1h30", 0, "end with a unit"},
		{"PT1HT2M", 0, "more than one T"},
		{"200Y", 0, "longer than"},
		{"1e9h", 0, "unknown unit"},
	} {
		got, err := ParseLifetime(tt.in)
		if got != tt.want || (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseLifetime(%q) = %v, %v; want %v, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseExpiration(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"2026-06-02T12:00:00Z", 24 * time.Hour, ""},
		{"2026-06-01T12:59:00+01:00", 0, "future"},
		{"2026-06-01T12:30:00.142Z", 30*time.Minute + 142*time.Millisecond, ""},
		{"2025-01-01", 0, "future"},
		{"tomorrow", 0, "want a time"},
	} {
		at, err := ParseExpiration(tt.in, now)
		got := at.Sub(now)
		if err != nil {
			got = 0
		}
		if got != tt.want || (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseExpiration(%q) = %v, %v; want %v, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// FuzzParseLifetime: any input gives an error or a lifetime of 0 (never)
// or between a second and the bound, and never panics.
func FuzzParseLifetime(f *testing.F) {
	for _, s := range []string{"0", "90", "1d12h", "P1D", "PT1H30M", "1.5h", "500ms", "P1Y2M3DT4H5M6S", "1,5h", "+2s", "T"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseLifetime(s)
		if err != nil {
			return
		}
		if d != 0 && (d < time.Second || d > maxLifetime) || d == 0 && s != "0" {
			t.Fatalf("ParseLifetime(%q) = %v", s, d)
		}
	})
}
