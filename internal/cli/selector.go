package cli

import (
	"errors"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/fleet"
)

// selectorFlags choose the nodes of run and audit, besides node names.
func selectorFlags() []ucli.Flag {
	return append([]ucli.Flag{&ucli.BoolFlag{Name: "all", Usage: "every RUNNING instance of the project"}}, setFlags()...)
}

// setFlags narrow the project's nodes to a set, the same way in every
// command that takes them.
func setFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "filter", Usage: "the nodes the Compute API list filter `EXPR` matches, such as labels.goog-k8s-node-pool-name=default-pool"},
		&ucli.StringFlag{Name: "cluster", Usage: "the nodes of GKE cluster `NAME`"},
		&ucli.StringFlag{Name: "pool", Usage: "the nodes of GKE node pool `NAME`"},
	}
}

// selectorFlagValues reads the selector flags; the caller adds the names.
func selectorFlagValues(c *ucli.Context) fleet.Selector {
	return fleet.Selector{All: c.Bool("all"), Filter: c.String("filter"),
		Cluster: c.String("cluster"), Pool: c.String("pool"), Zone: c.String("zone")}
}

// selectorSet reports whether a selector flag chooses the nodes.
func selectorSet(s fleet.Selector) bool {
	return s.All || s.Filter != "" || s.Cluster != "" || s.Pool != ""
}

// checkSelection wants the nodes chosen one way, by names or by flags, and
// a --filter that can be a Compute API filter.
func checkSelection(s fleet.Selector) error {
	switch set := selectorSet(s); {
	case len(s.Names) > 0 && set:
		return usagef("node names and --all/--filter/--cluster/--pool: give one or the other")
	case len(s.Names) == 0 && !set:
		return usagef("no nodes: give NODE names, --all, --filter, --cluster or --pool")
	}
	return checkFilter(s.Filter, false)
}

// checkFilter refuses a --filter that cannot be a Compute API filter, such
// as a regular expression or a glob on names.
func checkFilter(filter string, pattern bool) error {
	if filter == "" {
		return nil
	}
	return filterUsage(fleet.CheckFilter(filter), pattern)
}

// filterUsage makes a filter the API (or CheckFilter) refused a usage
// error, saying what a filter looks like; pattern says the command also
// takes --pattern, a glob on names.
func filterUsage(err error, pattern bool) error {
	var fe *fleet.InvalidFilterError
	if !errors.As(err, &fe) {
		return err
	}
	alt := "for names, a regular expression: --filter 'name eq gke-cluster-.*'"
	if pattern {
		alt = "for names, a glob: --pattern 'gke-cluster-*'"
	}
	return usagef("--filter %v; one looks like labels.goog-k8s-node-pool-name=default-pool; %s", fe, alt)
}
