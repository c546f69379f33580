// Package gce makes the Compute Engine and OS Login REST calls gkessh
// needs (instances and their metadata, read and written; host keys,
// firewalls, serial output and IAM permissions; OS Login keys) and keeps
// the on-disk zone cache. It reports what the APIs say: how a node is
// entered, OS Login or metadata keys, is internal/access's decision.
package gce

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// DefaultEndpoint is the Compute API base URL.
const DefaultEndpoint = "https://compute.googleapis.com/compute/v1/"

// Client is a Compute API client bound to one project. It speaks the REST
// API with net/http rather than through google.golang.org/api, whose
// transport stack is most of a binary that needs eight calls; see do.
type Client struct {
	ProjectID   string             // the project name, e.g. "my-project"
	Endpoint    string             // the API base URL, ending in "/"
	HTTP        *http.Client       // sends every call
	TokenSource oauth2.TokenSource // the bearer token of every call
	UserAgent   string             // names gkessh, and its version, in Google's logs
	// Timeout bounds each request, reply included (DefaultTimeout if 0).
	Timeout time.Duration
	// Backoff says how a call refused for the project's rate is made
	// again (DefaultBackoff when Attempts is 0).
	Backoff Backoff
	// APIs are the base URLs, ending in "/", of the other Google APIs
	// the client calls, by name: oslogin, cloudresourcemanager, iam, iap.
	// A missing one is served at https://NAME.googleapis.com/.
	APIs map[string]string

	// Calls made again after a rate refusal and the waits before them
	// (ns), shared by copies.
	limited, limitedWait *atomic.Int64
}

// New returns a client for project. An empty endpoint means DefaultEndpoint.
// It makes no call, so the context is unused.
func New(_ context.Context, project, endpoint string, ts oauth2.TokenSource) (*Client, error) {
	if project == "" {
		return nil, ErrNoProject
	}
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if !strings.HasSuffix(endpoint, "/") {
		endpoint += "/"
	}
	// One command makes several calls: reuse the token until it expires,
	// unless the source caches itself and can drop a refused token.
	if _, ok := ts.(invalidator); !ok {
		ts = oauth2.ReuseTokenSource(nil, ts)
	}
	return &Client{
		ProjectID:   project,
		Endpoint:    endpoint,
		HTTP:        http.DefaultClient,
		TokenSource: ts,
		UserAgent:   "gkessh",
		limited:     new(atomic.Int64),
		limitedWait: new(atomic.Int64),
	}, nil
}

// List returns the project's instances in every zone that match an
// aggregatedList filter ("" for all).
func (c *Client) List(ctx context.Context, filter string) ([]*Instance, error) {
	var found []*Instance
	q := url.Values{"maxResults": {"500"}}
	if filter != "" {
		q.Set("filter", filter)
	}
	path, err := c.projectPath("aggregated", "instances")
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	for {
		var page instanceAggregatedList
		if err := c.do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return nil, explain(err, "list instances in project "+c.ProjectID, "compute.instances.list")
		}
		for _, scoped := range page.Items {
			shareValues(scoped.Instances, values)
			found = append(found, scoped.Instances...)
		}
		if page.NextPageToken == "" {
			return found, nil
		}
		q.Set("pageToken", page.NextPageToken)
	}
}

// shareValues makes equal metadata values of insts share one string,
// recorded in seen: a fleet's nodes carry the same long values (a GKE node
// pool's boot scripts are some 43 KB a node), which would otherwise be
// held once per node, 45 MB for 1000 nodes.
func shareValues(insts []*Instance, seen map[string]string) {
	for _, in := range insts {
		if in.Metadata == nil {
			continue
		}
		for _, it := range in.Metadata.Items {
			if it.Value == nil {
				continue
			}
			if s, ok := seen[*it.Value]; ok {
				*it.Value = s
			} else {
				seen[*it.Value] = *it.Value
			}
		}
	}
}

// Locate finds an instance by name in any zone with one aggregatedList call,
// the way gcloud resolves a missing --zone.
func (c *Client) Locate(ctx context.Context, name string) (*Instance, error) {
	found, err := c.List(ctx, fmt.Sprintf("name eq ^%s$", regexp.QuoteMeta(name)))
	if err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, &NoInstanceError{Name: name, Project: c.ProjectID}
	case 1:
		return found[0], nil
	}
	zones := make([]string, len(found))
	for i, in := range found {
		zones[i] = ZoneName(in.Zone)
	}
	slices.Sort(zones) // the same message whatever order the API lists them in
	return nil, &AmbiguousZoneError{Name: name, Zones: zones}
}

// Names lists the names of the project's instances (in zone, when not
// ""), for suggest.Near to pick from when a name matched none: it lists
// the whole project, so call it only once a lookup has failed. Best
// effort: a failed list gives none.
func (c *Client) Names(ctx context.Context, zone string) []string {
	all, err := c.List(ctx, "")
	if err != nil {
		return nil
	}
	var names []string
	for _, in := range all {
		// The names go into a message: only those within GCE's grammar.
		if CheckName(in.Name) == nil && (zone == "" || ZoneName(in.Zone) == zone) {
			names = append(names, in.Name)
		}
	}
	return names
}

// ZoneName returns what follows the last "/zones/" in a zone URL (all of
// it when there is none), for CheckZone to judge: a zone that itself
// contains '/' must not pass as its last element.
func ZoneName(zoneURL string) string {
	if i := strings.LastIndex(zoneURL, "/zones/"); i >= 0 {
		return zoneURL[i+len("/zones/"):]
	}
	return zoneURL
}
