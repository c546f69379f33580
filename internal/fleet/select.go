package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/suggest"
)

// The labels GKE puts on every node's instance.
const (
	LabelCluster = "goog-k8s-cluster-name"
	LabelPool    = "goog-k8s-node-pool-name"
)

// Selector says which instances to run on: Names, or the set that All,
// Filter, Cluster and Pool describe together. Zone narrows either.
type Selector struct {
	Names   []string
	All     bool
	Filter  string // Compute API list filter (AIP-160), e.g. labels.env = prod
	Cluster string // GKE cluster name (label goog-k8s-cluster-name)
	Pool    string // GKE node pool name (label goog-k8s-node-pool-name)
	Zone    string
	// Pattern narrows a set to the names it matches: * any run of
	// characters, ? one (gce.CheckNamePattern's grammar).
	Pattern string
}

// Selection is what a Selector matched.
type Selection struct {
	// Run are the RUNNING instances, sorted by name.
	Run []*gce.Instance
	// Skipped matched a set selector but are not RUNNING; they are listed,
	// never run, and do not count as failures.
	Skipped []*gce.Instance
	// Unreachable are named nodes that cannot be run on: missing, not
	// RUNNING, or ambiguous. Results for them are ready to report.
	Unreachable []Result
	// Invalid are instances the API listed with a name or zone outside
	// GCE's grammar (a hostile endpoint): never run, never printed raw.
	Invalid []error
}

// Select lists the project's instances that sel picks, with one
// aggregatedList call.
func Select(ctx context.Context, c *gce.Client, sel Selector) (Selection, error) {
	filter, err := sel.filter()
	if err != nil {
		return Selection{}, err
	}
	found, err := c.List(ctx, filter)
	var ae *gce.APIError
	if sel.Filter != "" && errors.As(err, &ae) && ae.Code == http.StatusBadRequest {
		return Selection{}, &InvalidFilterError{Filter: sel.Filter, Err: err}
	}
	if err != nil {
		return Selection{}, err
	}
	var s Selection
	found = slices.DeleteFunc(found, func(in *gce.Instance) bool {
		// The name and zone go into tunnel requests, known_hosts and
		// every output line.
		if err := cmp.Or(gce.CheckName(in.Name), gce.CheckZone(gce.ZoneName(in.Zone))); err != nil {
			s.Invalid = append(s.Invalid, err)
			return true
		}
		return (sel.Zone != "" && gce.ZoneName(in.Zone) != sel.Zone) || !matchPattern(sel.Pattern, in.Name)
	})
	slices.SortFunc(found, func(a, b *gce.Instance) int {
		return strings.Compare(a.Name+"/"+a.Zone, b.Name+"/"+b.Zone)
	})
	if len(sel.Names) == 0 {
		for _, in := range found {
			if in.Status == "RUNNING" {
				s.Run = append(s.Run, in)
			} else {
				s.Skipped = append(s.Skipped, in)
			}
		}
		if len(s.Run) == 0 {
			return s, noMatch(ctx, c, sel, s.Skipped)
		}
		return s, nil
	}
	byName := map[string][]*gce.Instance{}
	for _, in := range found {
		byName[in.Name] = append(byName[in.Name], in)
	}
	seen := map[string]bool{}
	var names []string // the project's, listed once a name is missing
	listed := false
	for _, name := range sel.Names {
		if seen[name] {
			continue
		}
		seen[name] = true
		ins := byName[name]
		switch {
		case len(ins) == 0:
			if !listed {
				names, listed = c.Names(ctx, sel.Zone), true
			}
			s.Unreachable = append(s.Unreachable, Result{Node: name, Zone: sel.Zone, Status: Unreachable, Exit: NoExit,
				Err: &gce.NoInstanceError{Name: name, Project: c.ProjectID, Zone: sel.Zone, Near: suggest.Near(name, names)}})
		case len(ins) > 1:
			zones := make([]string, len(ins))
			for i, in := range ins {
				zones[i] = gce.ZoneName(in.Zone)
			}
			s.Unreachable = append(s.Unreachable, Result{Node: name, Status: Unreachable, Exit: NoExit,
				Err: &gce.AmbiguousZoneError{Name: name, Zones: slices.Sorted(slices.Values(zones))}})
		case ins[0].Status != "RUNNING":
			s.Unreachable = append(s.Unreachable, Result{Node: name, Zone: gce.ZoneName(ins[0].Zone), Status: Unreachable, Exit: NoExit,
				Err: &NotRunningError{Status: ins[0].Status}})
		default:
			s.Run = append(s.Run, ins[0])
		}
	}
	slices.SortFunc(s.Run, func(a, b *gce.Instance) int { return strings.Compare(a.Name, b.Name) })
	return s, nil
}

// NoMatchError is a selection by All, Filter, Cluster or Pool that
// matched no RUNNING instance: a typo there must not pass for a fleet with
// nothing to do. It says what the project has instead.
type NoMatchError struct {
	Selector Selector
	Project  string
	// NotRunning are the instances that matched, with their status.
	NotRunning []string
	// Clusters are the project's GKE clusters (in Selector.Zone when set)
	// and their node pools, sorted, from the labels GKE sets on its nodes.
	Clusters map[string][]string
	// Running counts the project's RUNNING instances (in Selector.Zone).
	Running int
}

func (e *NoMatchError) Error() string {
	var what []string
	if e.Selector.Filter != "" {
		what = append(what, "filter "+e.Selector.Filter)
	}
	if e.Selector.Cluster != "" {
		what = append(what, "cluster "+e.Selector.Cluster)
	}
	if e.Selector.Pool != "" {
		what = append(what, "node pool "+e.Selector.Pool)
	}
	if e.Selector.Pattern != "" {
		what = append(what, "name pattern "+e.Selector.Pattern)
	}
	where := "project " + e.Project
	if e.Selector.Zone != "" {
		where = "zone " + e.Selector.Zone + " of " + where
	}
	msg := "no RUNNING instance in " + where
	if len(what) > 0 {
		msg += " matches " + strings.Join(what, " and ")
	}
	if len(e.NotRunning) > 0 {
		msg += fmt.Sprintf(" (%d matched but are not RUNNING: %s)", len(e.NotRunning), strings.Join(e.NotRunning, ", "))
	}
	return msg
}

// noMatch lists the whole project (in sel.Zone) to say what it has
// instead: one more call, made only when the selection failed.
func noMatch(ctx context.Context, c *gce.Client, sel Selector, skipped []*gce.Instance) error {
	e := &NoMatchError{Selector: sel, Project: c.ProjectID, Clusters: map[string][]string{}}
	for _, in := range skipped {
		e.NotRunning = append(e.NotRunning, in.Name+" "+in.Status)
	}
	all, err := c.List(ctx, "")
	if err != nil {
		return errors.Join(e, err)
	}
	for _, in := range all {
		if in.Status != "RUNNING" || (sel.Zone != "" && gce.ZoneName(in.Zone) != sel.Zone) {
			continue
		}
		e.Running++
		cluster, pool := in.Labels[LabelCluster], in.Labels[LabelPool]
		// Label values go into a message: only those within GCE's grammar.
		if cluster == "" || gce.CheckLabel(LabelCluster, cluster) != nil {
			continue
		}
		pools := e.Clusters[cluster]
		if pool != "" && gce.CheckLabel(LabelPool, pool) == nil && !slices.Contains(pools, pool) {
			pools = append(pools, pool)
		}
		e.Clusters[cluster] = pools
	}
	for _, pools := range e.Clusters {
		slices.Sort(pools)
	}
	return e
}

// matchPattern reports whether name matches pattern ("" matches all).
func matchPattern(pattern, name string) bool {
	// Names hold no '/', and CheckNamePattern leaves only * and ? special.
	ok, err := path.Match(pattern, name)
	return pattern == "" || (err == nil && ok)
}

// InvalidFilterError is a list filter the Compute API refused as such.
type InvalidFilterError struct {
	Filter string
	Err    error // the API's answer, or what CheckFilter found
}

func (e *InvalidFilterError) Error() string {
	return fmt.Sprintf("%q is not a Compute API list filter: %v", e.Filter, e.Err)
}

func (e *InvalidFilterError) Unwrap() error { return e.Err }

// CheckFilter catches, before any call, what cannot be a Compute API list
// filter (compute/v1 instances.list's filter parameter, AIP-160): a value
// with no comparison (FIELD OP VALUE, OP one of = != < <= > >= : or the
// words eq and ne), such as a regular expression or a glob on names, or
// with unbalanced quotes or parentheses. The API judges the rest.
func CheckFilter(expr string) error {
	bad := func(msg string) error { return &InvalidFilterError{Filter: expr, Err: errors.New(msg)} }
	start := strings.TrimLeft(expr, " \t")
	if start == "" {
		return bad("it is empty")
	}
	if c := start[0]; !(c == '(' || c == '-' || c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return bad("it does not start with a field name")
	}
	var quote byte
	depth, ops := 0, 0
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c == '\\':
			i++ // an escaped character, in a string or a regular expression
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			if depth--; depth < 0 {
				return bad("a ) closes nothing")
			}
		case strings.IndexByte("=<>:", c) >= 0:
			ops++
		}
	}
	// eq and ne are operators between a field and a value.
	words := strings.Fields(expr)
	for i := 1; i < len(words)-1; i++ {
		if words[i] == "eq" || words[i] == "ne" {
			ops++
		}
	}
	switch {
	case quote != 0:
		return bad("a string is not closed")
	case depth > 0:
		return bad("a ( is not closed")
	case ops == 0:
		return bad("it compares nothing (FIELD OP VALUE)")
	}
	return nil
}

// NotRunningError is a named node that is not RUNNING.
type NotRunningError struct{ Status string }

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("instance is %s, not RUNNING", e.Status)
}

// filter is the list filter for sel: a regular expression on the names,
// or AIP-160 terms for the labels and the user's filter. Compute refuses a
// mix of the two forms, so names combine with nothing but Zone, which is
// applied to the result.
func (sel Selector) filter() (string, error) {
	set := sel.All || sel.Filter != "" || sel.Cluster != "" || sel.Pool != ""
	switch {
	case len(sel.Names) > 0 && set:
		return "", errors.New("fleet: select by names or by All, Filter, Cluster and Pool, not both")
	case len(sel.Names) > 0:
		quoted := make([]string, len(sel.Names))
		for i, n := range sel.Names {
			quoted[i] = regexp.QuoteMeta(n)
		}
		return "name eq " + strings.Join(quoted, "|"), nil
	case !set:
		return "", errors.New("fleet: nothing selected: no names, and none of All, Filter, Cluster or Pool")
	}
	var terms []string
	if sel.Filter != "" {
		terms = append(terms, "("+sel.Filter+")")
	}
	for _, l := range []struct{ key, value string }{{LabelCluster, sel.Cluster}, {LabelPool, sel.Pool}} {
		if l.value != "" {
			terms = append(terms, fmt.Sprintf("(labels.%s = %s)", l.key, quote(l.value)))
		}
	}
	return strings.Join(terms, " AND "), nil
}

// quote makes v an AIP-160 string literal.
func quote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
