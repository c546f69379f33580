package audit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/gce"
)

// Report is one audit: the nodes judged, those whose live checks could not
// run, and the findings, worst first.
type Report struct {
	Project  string      `json:"project"`
	Nodes    []string    `json:"nodes"`
	Probed   int         `json:"probed"`
	Unprobed []NodeError `json:"unprobed"`
	Findings []Finding   `json:"findings"`
}

// NodeError is why a node's live checks did not run.
type NodeError struct {
	Node  string `json:"node"`
	Error string `json:"error"`
}

// Config is one audit run.
type Config struct {
	Compute *gce.Client
	// Fleet logs in to the nodes for the live checks: one key write for
	// the whole audit, nodes in parallel. Its Command is unused; nil Dial
	// skips the live checks.
	Fleet fleet.Config
	// Key is the auditor's login key, to tell the lines the live checks
	// used.
	Key ssh.PublicKey
	Now time.Time
}

// Run audits insts: it reads the project and its firewall rules, probes
// every node through its SSH connection, and judges the metadata as it was
// before audit's own key went in.
func Run(ctx context.Context, cfg Config, insts []*gce.Instance) (*Report, error) {
	proj, err := cfg.Compute.Project(ctx)
	if err != nil {
		return nil, err
	}
	fws, err := cfg.Compute.ListFirewalls(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{Project: proj.Name, Nodes: []string{}, Unprobed: []NodeError{}}
	for _, inst := range insts {
		rep.Nodes = append(rep.Nodes, inst.Name)
	}
	probes := map[string]*Probe{}
	var own []Own
	if cfg.Fleet.Dial != nil && len(insts) > 0 {
		var mu sync.Mutex
		fc := cfg.Fleet
		fc.Granted = func(p *access.Plan, g *access.Granted, nodes int) {
			if g.Mode == access.MetadataKeys && !g.Wrote && !g.Expire.IsZero() {
				mu.Lock()
				own = append(own, Own{Scope: g.Scope, Instance: p.Node.Name, User: p.User, Key: cfg.Key})
				mu.Unlock()
			}
			if cfg.Fleet.Granted != nil {
				cfg.Fleet.Granted(p, g, nodes)
			}
		}
		fc.Use = func(ctx context.Context, inst *gce.Instance, client *ssh.Client) error {
			p, err := ProbeNode(ctx, client, inst)
			if err != nil {
				return err
			}
			mu.Lock()
			probes[inst.Name] = p
			mu.Unlock()
			return nil
		}
		results, err := fleet.Run(ctx, fc, insts)
		if err != nil {
			return nil, err
		}
		for _, r := range results {
			if r.Status != fleet.OK {
				msg := string(r.Status)
				if r.Err != nil {
					msg = r.Err.Error()
				}
				rep.Unprobed = append(rep.Unprobed, NodeError{Node: r.Node, Error: msg})
			}
		}
	}
	rep.Probed = len(probes)
	in := Input{Project: proj, Instances: insts, Firewalls: fws, Probes: probes, Now: cfg.Now, Own: own}
	if rep.Findings, err = Evaluate(in); err != nil {
		return nil, err
	}
	return rep, nil
}
