// Package firewall decides, as GCE does, whether VPC firewall rules let a
// connection from a source range reach a port of an instance: which rules
// apply to the instance, port ranges, all-port and all-protocol entries,
// deny rules and priorities.
package firewall

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gkessh/gkessh/internal/gce"
)

// Rule is a firewall rule, parsed.
type Rule struct {
	Name     string
	Network  string // the network's name
	Priority int64  // 0 goes first, 65535 last
	Ingress  bool
	Disabled bool
	Deny     bool
	Sources  []netip.Prefix
	// SourceTags admit traffic from instances with a tag; they never
	// match a connection given by address range.
	SourceTags     []string
	TargetTags     []string
	TargetAccounts []string
	Entries        []Entry // what the rule allows or denies
}

// Entry is one protocol of a rule, with its ports; no ports means all.
type Entry struct {
	Protocol string // "tcp", "udp", "icmp", "all", ...; numbers as given
	Ports    []PortRange
}

// PortRange is an inclusive port range.
type PortRange struct{ Lo, Hi int }

func (p PortRange) String() string {
	if p.Lo == p.Hi {
		return strconv.Itoa(p.Lo)
	}
	return fmt.Sprintf("%d-%d", p.Lo, p.Hi)
}

// ParsePorts parses one entry of a rule's ports: "22" or "1000-2000".
func ParsePorts(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := parsePort(lo)
	h, err2 := parsePort(hi)
	if err1 != nil || err2 != nil || l > h {
		return PortRange{}, fmt.Errorf("firewall: bad port range %q: want N or N-M with 0 <= N <= M <= 65535", s)
	}
	return PortRange{l, h}, nil
}

func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a port")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("not a port")
	}
	return n, nil
}

// Parse reads a rule as the Compute API returns it.
func Parse(fw *gce.Firewall) (Rule, error) {
	r := Rule{
		Name: fw.Name, Network: lastElem(fw.Network), Priority: fw.Priority,
		Ingress: fw.Direction == "" || fw.Direction == "INGRESS", Disabled: fw.Disabled,
		SourceTags: fw.SourceTags, TargetTags: fw.TargetTags, TargetAccounts: fw.TargetServiceAccounts,
	}
	for _, s := range fw.SourceRanges {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Rule{}, fmt.Errorf("firewall: rule %s: source range %q: %w", fw.Name, s, err)
		}
		r.Sources = append(r.Sources, p.Masked())
	}
	list := fw.Allowed
	if len(fw.Denied) > 0 {
		r.Deny, list = true, fw.Denied
	}
	for _, a := range list {
		e := Entry{Protocol: strings.ToLower(a.IPProtocol)}
		for _, ps := range a.Ports {
			pr, err := ParsePorts(ps)
			if err != nil {
				return Rule{}, fmt.Errorf("firewall: rule %s: %w", fw.Name, err)
			}
			e.Ports = append(e.Ports, pr)
		}
		r.Entries = append(r.Entries, e)
	}
	return r, nil
}

// ParseAll parses rules, stopping at the first bad one.
func ParseAll(fws []*gce.Firewall) ([]Rule, error) {
	out := make([]Rule, 0, len(fws))
	for _, fw := range fws {
		r, err := Parse(fw)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Target is an instance's interface as rules see it.
type Target struct {
	Network  string // the network's name
	Tags     []string
	Accounts []string // service account e-mails
}

// TargetOf describes inst's nic0.
func TargetOf(inst *gce.Instance) Target {
	var t Target
	if len(inst.NetworkInterfaces) > 0 {
		t.Network = lastElem(inst.NetworkInterfaces[0].Network)
	}
	if inst.Tags != nil {
		t.Tags = inst.Tags.Items
	}
	for _, sa := range inst.ServiceAccounts {
		t.Accounts = append(t.Accounts, sa.Email)
	}
	return t
}

// AppliesTo reports whether the rule applies to the target: same network,
// and no targets or a target tag or service account the instance has.
func (r Rule) AppliesTo(t Target) bool {
	if r.Network != "" && t.Network != "" && r.Network != t.Network {
		return false
	}
	switch {
	case len(r.TargetTags) > 0:
		return slices.ContainsFunc(r.TargetTags, func(tag string) bool { return slices.Contains(t.Tags, tag) })
	case len(r.TargetAccounts) > 0:
		return slices.ContainsFunc(r.TargetAccounts, func(a string) bool { return slices.Contains(t.Accounts, a) })
	}
	return true
}

// Covers reports whether the rule matches every connection from src to
// proto/port: one of its source ranges holds all of src, and an entry
// names the protocol (or all) with the port in range (or no ports).
func (r Rule) Covers(src netip.Prefix, proto string, port int) bool {
	if !slices.ContainsFunc(r.Sources, func(p netip.Prefix) bool { return p.Bits() <= src.Bits() && p.Contains(src.Addr()) }) {
		return false
	}
	return slices.ContainsFunc(r.Entries, func(e Entry) bool {
		if e.Protocol != proto && e.Protocol != "all" && e.Protocol != protocolNumber[proto] {
			return false
		}
		return len(e.Ports) == 0 || slices.ContainsFunc(e.Ports, func(p PortRange) bool { return p.Lo <= port && port <= p.Hi })
	})
}

var protocolNumber = map[string]string{"tcp": "6", "udp": "17", "icmp": "1"}

// Verdict is what the rules decide for one connection.
type Verdict struct {
	Allowed bool
	// Rule decided it; nil means no rule matched and GCE's implied
	// deny-ingress rule (priority 65535) blocks it.
	Rule *Rule
}

func (v Verdict) String() string {
	switch {
	case v.Rule == nil:
		return "no rule matches: the implied deny-ingress rule blocks it"
	case v.Allowed:
		return fmt.Sprintf("rule %s (allow, priority %d) admits it", v.Rule.Name, v.Rule.Priority)
	}
	return fmt.Sprintf("rule %s (deny, priority %d) blocks it", v.Rule.Name, v.Rule.Priority)
}

// Decide evaluates the ingress rules that apply to t for a connection
// from src to proto/port. Rules go by priority, a deny before an allow of
// the same priority; disabled and egress rules are skipped; the first rule
// that covers the connection decides.
func Decide(rules []Rule, t Target, src netip.Prefix, proto string, port int) Verdict {
	var cands []Rule
	for _, r := range rules {
		if r.Ingress && !r.Disabled && r.AppliesTo(t) {
			cands = append(cands, r)
		}
	}
	slices.SortStableFunc(cands, func(a, b Rule) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		switch {
		case a.Deny && !b.Deny:
			return -1
		case b.Deny && !a.Deny:
			return 1
		}
		return 0
	})
	for i := range cands {
		if cands[i].Covers(src, proto, port) {
			return Verdict{Allowed: !cands[i].Deny, Rule: &cands[i]}
		}
	}
	return Verdict{}
}

func lastElem(u string) string { return u[strings.LastIndex(u, "/")+1:] }
