// Package gce reads what gkessh needs from the Compute Engine API: where an
// instance is, its metadata, the host keys its guest published, and whether
// OS Login is on.
package gce

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/oauth2"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
)

// DefaultEndpoint is the Compute API base URL.
const DefaultEndpoint = "https://compute.googleapis.com/compute/v1/"

// Client is a Compute API client bound to one project.
type Client struct {
	ProjectID string // the project name, e.g. "my-project"
	Svc       *compute.Service
}

// New returns a client for project. An empty endpoint means DefaultEndpoint.
func New(ctx context.Context, project, endpoint string, ts oauth2.TokenSource) (*Client, error) {
	if project == "" {
		return nil, fmt.Errorf("gce: no project: pass --project or set CLOUDSDK_CORE_PROJECT")
	}
	opts := []option.ClientOption{option.WithTokenSource(ts)}
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	svc, err := compute.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gce: %w", err)
	}
	return &Client{ProjectID: project, Svc: svc}, nil
}

// List returns the project's instances in every zone that match an
// aggregatedList filter ("" for all).
func (c *Client) List(ctx context.Context, filter string) ([]*compute.Instance, error) {
	var found []*compute.Instance
	call := c.Svc.Instances.AggregatedList(c.ProjectID).MaxResults(500).Context(ctx)
	if filter != "" {
		call = call.Filter(filter)
	}
	err := call.Pages(ctx, func(l *compute.InstanceAggregatedList) error {
		for _, scoped := range l.Items {
			found = append(found, scoped.Instances...)
		}
		return nil
	})
	if err != nil {
		return nil, explain(err, "list instances in project "+c.ProjectID, "compute.instances.list")
	}
	return found, nil
}

// Locate finds an instance by name in any zone with one aggregatedList call,
// the way gcloud resolves a missing --zone.
func (c *Client) Locate(ctx context.Context, name string) (*compute.Instance, error) {
	found, err := c.List(ctx, fmt.Sprintf("name eq ^%s$", regexp.QuoteMeta(name)))
	if err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("gce: no instance named %s in project %s: check the name, or pass --project", name, c.ProjectID)
	case 1:
		return found[0], nil
	}
	zones := make([]string, len(found))
	for i, in := range found {
		zones[i] = ZoneName(in.Zone)
	}
	return nil, fmt.Errorf("gce: instance name %s is in several zones (%s): pass --zone", name, strings.Join(zones, ", "))
}

// ZoneName returns the last path element of a zone URL.
func ZoneName(zoneURL string) string {
	return zoneURL[strings.LastIndex(zoneURL, "/")+1:]
}
