package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/internal/gce"
)

func allow(name string, prio int64, src string, proto string, ports ...string) *gce.Firewall {
	return &gce.Firewall{Name: name, Priority: prio, Direction: "INGRESS", SourceRanges: []string{src},
		Allowed: []*gce.FirewallAllowed{{IPProtocol: proto, Ports: ports}}}
}

func deny(name string, prio int64, src string, proto string, ports ...string) *gce.Firewall {
	return &gce.Firewall{Name: name, Priority: prio, Direction: "INGRESS", SourceRanges: []string{src},
		Denied: []*gce.FirewallAllowed{{IPProtocol: proto, Ports: ports}}}
}

func TestDecide(t *testing.T) {
	iap := netip.MustParsePrefix("35.235.240.0/20")
	node := Target{Network: "default", Tags: []string{"gke-c-1-node"}}
	tagged := func(fw *gce.Firewall, tags ...string) *gce.Firewall { fw.TargetTags = tags; return fw }
	for _, tc := range []struct {
		name  string
		rules []*gce.Firewall
		port  int
		want  string // deciding rule, "" for the implied deny
		allow bool
	}{
		{"none", nil, 22, "", false},
		{"exact", []*gce.Firewall{allow("iap", 1000, "35.235.240.0/20", "tcp", "22")}, 22, "iap", true},
		{"wider source", []*gce.Firewall{allow("any", 1000, "0.0.0.0/0", "tcp", "22")}, 22, "any", true},
		{"narrower source does not cover the range", []*gce.Firewall{allow("part", 1000, "35.235.240.0/24", "tcp", "22")}, 22, "", false},
		{"port range", []*gce.Firewall{allow("r", 1000, "35.235.240.0/20", "tcp", "20-25")}, 22, "r", true},
		{"port range excludes", []*gce.Firewall{allow("r", 1000, "35.235.240.0/20", "tcp", "23-25")}, 22, "", false},
		{"all ports", []*gce.Firewall{allow("tcp", 1000, "35.235.240.0/20", "tcp")}, 22, "tcp", true},
		{"all protocols", []*gce.Firewall{allow("all", 1000, "35.235.240.0/20", "all")}, 22, "all", true},
		{"protocol number", []*gce.Firewall{allow("six", 1000, "35.235.240.0/20", "6", "22")}, 22, "six", true},
		{"udp only", []*gce.Firewall{allow("udp", 1000, "35.235.240.0/20", "udp")}, 22, "", false},
		{"deny beats allow at equal priority", []*gce.Firewall{allow("a", 1000, "0.0.0.0/0", "tcp", "22"), deny("d", 1000, "0.0.0.0/0", "all")}, 22, "d", false},
		{"higher-priority allow beats deny", []*gce.Firewall{allow("a", 900, "35.235.240.0/20", "tcp", "22"), deny("d", 1000, "0.0.0.0/0", "tcp", "22")}, 22, "a", true},
		{"higher-priority deny beats allow", []*gce.Firewall{allow("a", 1000, "35.235.240.0/20", "tcp", "22"), deny("d", 999, "35.0.0.0/8", "tcp", "22")}, 22, "d", false},
		{"disabled is skipped", []*gce.Firewall{func() *gce.Firewall { f := allow("a", 1000, "0.0.0.0/0", "tcp", "22"); f.Disabled = true; return f }()}, 22, "", false},
		{"egress is skipped", []*gce.Firewall{func() *gce.Firewall {
			f := allow("a", 1000, "0.0.0.0/0", "tcp", "22")
			f.Direction = "EGRESS"
			return f
		}()}, 22, "", false},
		{"other target tag", []*gce.Firewall{tagged(allow("a", 1000, "0.0.0.0/0", "tcp", "22"), "web")}, 22, "", false},
		{"own target tag", []*gce.Firewall{tagged(allow("a", 1000, "0.0.0.0/0", "tcp", "22"), "web", "gke-c-1-node")}, 22, "a", true},
		{"other network", []*gce.Firewall{func() *gce.Firewall {
			f := allow("a", 1000, "0.0.0.0/0", "tcp", "22")
			f.Network = "https://www.googleapis.com/compute/v1/projects/p/global/networks/other"
			return f
		}()}, 22, "", false},
	} {
		rules, err := ParseAll(tc.rules)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		v := Decide(rules, node, iap, "tcp", tc.port)
		got := ""
		if v.Rule != nil {
			got = v.Rule.Name
		}
		if got != tc.want || v.Allowed != tc.allow {
			t.Errorf("%s: decided by %q allowed=%v (%s), want %q allowed=%v", tc.name, got, v.Allowed, v, tc.want, tc.allow)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, fw := range []*gce.Firewall{
		allow("a", 1000, "not-a-cidr", "tcp", "22"),
		allow("a", 1000, "0.0.0.0/0", "tcp", "22-"),
		allow("a", 1000, "0.0.0.0/0", "tcp", "25-22"),
		allow("a", 1000, "0.0.0.0/0", "tcp", "65536"),
		allow("a", 1000, "0.0.0.0/0", "tcp", "+22"),
	} {
		if _, err := Parse(fw); err == nil || !strings.Contains(err.Error(), "rule a") {
			t.Errorf("Parse(%+v) = %v, want an error naming the rule", fw.SourceRanges, err)
		}
	}
}

// FuzzParsePorts: a parsed range is ordered, within 0-65535, and prints
// back as a form that parses to itself.
func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"22", "0-65535", "1000-2000", "", "-", "22-", "0x16", "65536", " 22"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePorts(s)
		if err != nil {
			return
		}
		if p.Lo < 0 || p.Hi > 65535 || p.Lo > p.Hi {
			t.Fatalf("ParsePorts(%q) = %+v", s, p)
		}
		if q, err := ParsePorts(p.String()); err != nil || q != p {
			t.Fatalf("ParsePorts(%q) = %v, reparsed as %v, %v", s, p, q, err)
		}
	})
}
