package cli

import (
	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/fleet"
)

// selectorFlags choose the nodes of run and audit, besides node names.
func selectorFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "all", Usage: "every RUNNING instance of the project"},
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

// checkSelection wants the nodes chosen one way: by names or by flags.
func checkSelection(s fleet.Selector) error {
	switch set := selectorSet(s); {
	case len(s.Names) > 0 && set:
		return usagef("node names and --all/--filter/--cluster/--pool: give one or the other")
	case len(s.Names) == 0 && !set:
		return usagef("no nodes: give NODE names, --all, --filter, --cluster or --pool")
	}
	return nil
}
