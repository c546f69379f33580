package sshclient

import (
	"net"
	"testing"
)

func TestParseForward(t *testing.T) {
	for _, tc := range []struct {
		in             string
		listen, target string // "" listen: an error
	}{
		{"8080:localhost:80", "localhost:8080", "localhost:80"},
		{"127.0.0.1:8080:10.0.0.5:443", "127.0.0.1:8080", "10.0.0.5:443"},
		{"*:8080:db:5432", ":8080", "db:5432"},
		{":8080:db:5432", ":8080", "db:5432"},
		{"0:localhost:22", "localhost:0", "localhost:22"},
		{"[::1]:8080:[fe80::1]:80", "[::1]:8080", "[fe80::1]:80"},
		{"8080:[::1]:80", "localhost:8080", "[::1]:80"},
		{"8080:localhost", "", ""},
		{"8080:localhost:0", "", ""},
		{"8080:localhost:65536", "", ""},
		{"x:localhost:80", "", ""},
		{"8080::80", "", ""},
		{"a:b:8080:localhost:80", "", ""},
		{"[::1:8080:localhost:80", "", ""},
		{"[::1]x:8080:localhost:80", "", ""},
		{"+80:localhost:80", "", ""},
		{"00:0:0]:1", "", ""},
		{"", "", ""},
	} {
		f, err := ParseForward(tc.in)
		if tc.listen == "" {
			if err == nil {
				t.Errorf("ParseForward(%q) = %+v, want an error", tc.in, f)
			}
			continue
		}
		if err != nil || f.Listen != tc.listen || f.Target != tc.target {
			t.Errorf("ParseForward(%q) = %+v, %v; want %s → %s", tc.in, f, err, tc.listen, tc.target)
		}
	}
}

// A parsed forward always gives addresses net can split.
func FuzzParseForward(f *testing.F) {
	for _, s := range []string{"8080:localhost:80", "[::1]:8080:[fe80::1]:80", "*:1:a:2", "[", "::::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fw, err := ParseForward(s)
		if err != nil {
			return
		}
		for _, addr := range []string{fw.Listen, fw.Target} {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				t.Fatalf("ParseForward(%q) = %+v: %v", s, fw, err)
			}
		}
	})
}
