package gce

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// What doctor and audit read besides instances and metadata: firewall
// rules, the serial console, and which IAM permissions the caller holds.

// Firewall is a VPC firewall rule.
type Firewall struct {
	Name                  string             `json:"name,omitempty"`
	Network               string             `json:"network,omitempty"` // a URL
	Priority              int64              `json:"priority"`
	Direction             string             `json:"direction,omitempty"` // INGRESS or EGRESS
	Disabled              bool               `json:"disabled,omitempty"`
	SourceRanges          []string           `json:"sourceRanges,omitempty"`
	SourceTags            []string           `json:"sourceTags,omitempty"`
	TargetTags            []string           `json:"targetTags,omitempty"`
	TargetServiceAccounts []string           `json:"targetServiceAccounts,omitempty"`
	Allowed               []*FirewallAllowed `json:"allowed,omitempty"`
	Denied                []*FirewallAllowed `json:"denied,omitempty"`
}

// FirewallAllowed is one protocol entry of a rule's allowed or denied list.
type FirewallAllowed struct {
	IPProtocol string   `json:"IPProtocol,omitempty"`
	Ports      []string `json:"ports,omitempty"`
}

// ListFirewalls returns the project's firewall rules (firewalls.list).
func (c *Client) ListFirewalls(ctx context.Context) ([]*Firewall, error) {
	var all []*Firewall
	q := url.Values{"maxResults": {"500"}}
	path, err := c.projectPath("global", "firewalls")
	if err != nil {
		return nil, err
	}
	for {
		var page struct {
			Items         []*Firewall `json:"items"`
			NextPageToken string      `json:"nextPageToken"`
		}
		if err := c.do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return nil, explain(err, "list firewall rules of project "+c.ProjectID, "compute.firewalls.list")
		}
		all = append(all, page.Items...)
		if page.NextPageToken == "" {
			return all, nil
		}
		q.Set("pageToken", page.NextPageToken)
	}
}

// EffectiveFirewalls returns the VPC firewall rules that apply to the
// instance's interface nic (instances.getEffectiveFirewalls).
func (c *Client) EffectiveFirewalls(ctx context.Context, zone, name, nic string) ([]*Firewall, error) {
	var out struct {
		Firewalls []*Firewall `json:"firewalls"`
	}
	path, err := c.instancePath(zone, name, "getEffectiveFirewalls")
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, http.MethodGet, path, url.Values{"networkInterface": {nic}}, nil, &out); err != nil {
		return nil, explain(err, "read the effective firewall rules of "+name, "compute.instances.getEffectiveFirewalls")
	}
	return out.Firewalls, nil
}

// SerialPortOutput returns what serial port 1 of the instance printed, as
// far back as GCE keeps it.
func (c *Client) SerialPortOutput(ctx context.Context, zone, name string) (string, error) {
	var out struct {
		Contents string `json:"contents"`
	}
	path, err := c.instancePath(zone, name, "serialPort")
	if err != nil {
		return "", err
	}
	if err := c.do(ctx, http.MethodGet, path, url.Values{"port": {strconv.Itoa(1)}}, nil, &out); err != nil {
		return "", explain(err, "read the serial console of "+name, "compute.instances.getSerialPortOutput")
	}
	return out.Contents, nil
}

// Permission holders for TestPermissions.
const (
	OnInstance       = "instance"        // Compute instances.testIamPermissions
	OnProject        = "project"         // Resource Manager v3 projects.testIamPermissions
	OnServiceAccount = "service-account" // IAM projects.serviceAccounts.testIamPermissions
	OnIAPTunnel      = "iap-tunnel"      // IAP v1 testIamPermissions on the tunnel instance
)

// TestPermissions asks which of perms the caller holds on a resource, as
// gcloud's troubleshooter does: on the instance zone/name, the project,
// the service account email (zone, name unused), or the instance's IAP
// tunnel resource.
func (c *Client) TestPermissions(ctx context.Context, on, zone, name string, perms []string) ([]string, error) {
	req := map[string][]string{"permissions": perms}
	var out struct {
		Permissions []string `json:"permissions"`
	}
	// Every path below is checked as the Compute ones are.
	instance, err := c.instancePath(zone, name, "testIamPermissions")
	switch on {
	case OnProject:
		_, err = c.projectPath()
	case OnServiceAccount:
		_, err = c.projectPath("serviceAccounts", name)
	}
	if err != nil {
		return nil, err
	}
	p := url.PathEscape(c.ProjectID)
	switch on {
	case OnInstance:
		err = c.do(ctx, http.MethodPost, instance, nil, req, &out)
	case OnProject:
		err = c.doAt(ctx, http.MethodPost, c.apiRoot("cloudresourcemanager")+"v3/projects/"+p+":testIamPermissions", nil, req, &out)
	case OnServiceAccount:
		err = c.doAt(ctx, http.MethodPost, c.apiRoot("iam")+"v1/projects/"+p+"/serviceAccounts/"+url.PathEscape(name)+":testIamPermissions", nil, req, &out)
	case OnIAPTunnel:
		err = c.doAt(ctx, http.MethodPost, c.apiRoot("iap")+"v1/projects/"+p+"/iap_tunnel/zones/"+url.PathEscape(zone)+"/instances/"+url.PathEscape(name)+":testIamPermissions", nil, req, &out)
	default:
		panic("gce: TestPermissions on " + on)
	}
	if err != nil {
		return nil, explain(err, "test IAM permissions on the "+on, "permission to read its IAM policy")
	}
	return out.Permissions, nil
}

// apiRoot is where the Google API named api is served: c.APIs[api], else
// its host under googleapis.com. A Compute endpoint of its own (a Private
// Service Connect or regional one, an emulator) moves no other API.
func (c *Client) apiRoot(api string) string {
	if u := c.APIs[api]; u != "" {
		return u
	}
	return "https://" + api + ".googleapis.com/"
}
