package cli

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/audit"
	"github.com/gkessh/gkessh/internal/bootlog"
	"github.com/gkessh/gkessh/internal/firewall"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
)

// The checks gcloud compute ssh --troubleshoot makes, done properly: IAM
// by testIamPermissions, the firewall by evaluating the effective rules,
// and the serial console.

// checkIAM names every permission a login needs that the caller lacks, on
// each resource gcloud's troubleshooter asks about. scope is where the
// login writes the key under metadata keys (keys.ScopeProject or
// keys.ScopeInstance).
func (d *doctor) checkIAM(ctx context.Context, c *gce.Client, r access.Node, inst *gce.Instance, mode access.Mode, scope string) {
	metadataKeys := mode == access.MetadataKeys
	instPerms := []string{"compute.instances.get", "compute.instances.use"}
	projPerms := []string{"resourcemanager.projects.get", "compute.projects.get", "compute.zoneOperations.get", "compute.globalOperations.get"}
	if metadataKeys {
		instPerms = append(instPerms, "compute.instances.setMetadata")
		projPerms = append(projPerms, "compute.projects.setCommonInstanceMetadata")
	} else {
		instPerms = append(instPerms, "compute.instances.osLogin", "compute.instances.osAdminLogin")
	}
	type check struct {
		on, zone, name string
		perms          []string
	}
	checks := []check{
		{gce.OnInstance, r.Zone, r.Name, instPerms},
		{gce.OnProject, "", "", projPerms},
		{gce.OnIAPTunnel, r.Zone, r.Name, []string{"iap.tunnelInstances.accessViaIAP"}},
	}
	if len(inst.ServiceAccounts) > 0 {
		checks = append(checks, check{gce.OnServiceAccount, "", inst.ServiceAccounts[0].Email, []string{"iam.serviceAccounts.actAs", "iam.serviceAccounts.get"}})
	}
	all := true
	missing := map[string][]string{} // by resource, of the checks that answered
	for _, ch := range checks {
		held, err := c.TestPermissions(ctx, ch.on, ch.zone, ch.name, ch.perms)
		if err != nil {
			d.warn("IAM on the %s: %v", ch.on, err)
			all = false
			continue
		}
		m := slices.DeleteFunc(slices.Clone(ch.perms), func(p string) bool { return slices.Contains(held, p) })
		if !metadataKeys && ch.on == gce.OnInstance && (slices.Contains(held, "compute.instances.osLogin") || slices.Contains(held, "compute.instances.osAdminLogin")) {
			// Either OS Login role will do.
			m = slices.DeleteFunc(m, func(p string) bool { return strings.HasPrefix(p, "compute.instances.os") })
		}
		missing[ch.on] = m
	}
	// A login that may not write project metadata writes the instance's
	// own, as gcloud falls back: that needs setMetadata on the instance and
	// actAs on the service account it runs as.
	_, instAnswered := missing[gce.OnInstance]
	fallback := metadataKeys && instAnswered && !slices.Contains(missing[gce.OnInstance], "compute.instances.setMetadata") &&
		!slices.Contains(missing[gce.OnServiceAccount], "iam.serviceAccounts.actAs")
	if len(inst.ServiceAccounts) > 0 {
		_, saAnswered := missing[gce.OnServiceAccount]
		fallback = fallback && saAnswered
	}
	// A node that reads project keys gets the key through the project
	// when the caller may write it: the instance's own setMetadata is
	// then needed only by nodes that block project keys.
	_, projAnswered := missing[gce.OnProject]
	projectWrite := metadataKeys && scope == keys.ScopeProject && projAnswered &&
		!slices.Contains(missing[gce.OnProject], "compute.projects.setCommonInstanceMetadata") &&
		!slices.Contains(missing[gce.OnProject], "compute.globalOperations.get")
	for _, ch := range checks {
		m := missing[ch.on]
		if len(m) == 0 {
			continue
		}
		if ch.on == gce.OnInstance && projectWrite && slices.Contains(m, "compute.instances.setMetadata") {
			d.warn("IAM on the instance %s: missing compute.instances.setMetadata: your key goes to project metadata, which you may write, "+
				"and %s reads it; only a node that blocks project keys needs its own", r.Name, r.Name)
			if m = slices.DeleteFunc(slices.Clone(m), func(p string) bool { return p == "compute.instances.setMetadata" }); len(m) == 0 {
				all = false
				continue
			}
		}
		all = false
		what := ch.on
		if ch.name != "" {
			what += " " + ch.name
		}
		switch {
		case ch.on == gce.OnProject && fallback:
			write := []string{"compute.globalOperations.get", "compute.projects.setCommonInstanceMetadata"}
			other := slices.DeleteFunc(slices.Clone(m), func(p string) bool { return slices.Contains(write, p) })
			if len(other) > 0 {
				d.fail("IAM on the project: missing %s", strings.Join(other, ", "))
			}
			if len(other) < len(m) {
				d.warn("IAM on the project: missing %s: the login cannot write project metadata, so your key goes to %s's own metadata instead, as gcloud falls back "+
					"(you hold compute.instances.setMetadata%s); it reaches that node only",
					strings.Join(slices.DeleteFunc(slices.Clone(m), func(p string) bool { return !slices.Contains(write, p) }), ", "), r.Name, actAsHeld(inst))
			}
		case ch.on == gce.OnServiceAccount:
			d.fail("IAM on service account %s: missing %s: setting metadata on a VM that runs as it needs them (roles/iam.serviceAccountUser)", ch.name, strings.Join(m, ", "))
		case ch.on == gce.OnIAPTunnel:
			d.fail("IAM on the IAP tunnel to %s: missing iap.tunnelInstances.accessViaIAP (roles/iap.tunnelResourceAccessor)", r.Name)
		default:
			d.fail("IAM on the %s: missing %s", what, strings.Join(m, ", "))
		}
	}
	if all {
		d.ok("IAM: you hold every permission a login to %s needs (testIamPermissions)", r.Name)
	}
}

// actAsHeld names actAs among the held permissions of the fallback when
// the instance runs as a service account.
func actAsHeld(inst *gce.Instance) string {
	if len(inst.ServiceAccounts) == 0 {
		return ""
	}
	return " and iam.serviceAccounts.actAs on " + inst.ServiceAccounts[0].Email
}

// checkFirewall evaluates the rules that apply to nic0 for a connection
// from IAP's range to the port, and names the rule that decides.
func (d *doctor) checkFirewall(ctx context.Context, c *gce.Client, r access.Node, inst *gce.Instance) {
	fws, err := c.EffectiveFirewalls(ctx, r.Zone, r.Name, "nic0")
	if err != nil {
		d.warn("firewall: %v", err)
		return
	}
	rules, err := firewall.ParseAll(fws)
	if err != nil {
		d.warn("firewall: %v", err)
		return
	}
	t := firewall.TargetOf(inst)
	v := firewall.Decide(rules, t, netip.MustParsePrefix("35.235.240.0/20"), "tcp", d.Port)
	if v.Allowed {
		d.ok("firewall: from 35.235.240.0/20 (IAP) to tcp:%d, %s", d.Port, v)
		return
	}
	network := t.Network
	if network == "" {
		network = "default"
	}
	d.fail("firewall: from 35.235.240.0/20 (IAP) to tcp:%d, %s: %s", d.Port, v, audit.IAPRuleFix(network, d.Port, v))
}

// checkSerial looks for boot trouble on serial port 1 since the last boot.
func (d *doctor) checkSerial(ctx context.Context, c *gce.Client, r access.Node) {
	out, err := c.SerialPortOutput(ctx, r.Zone, r.Name)
	if err != nil {
		d.warn("serial console: %v", err)
		return
	}
	problems := bootlog.Scan(out)
	for _, p := range problems {
		d.fail("serial console of %s: %s: %q", r.Name, p.Kind, p.Line)
	}
	if len(problems) == 0 {
		d.ok("serial console of %s: no sign of %s since the last boot", r.Name, strings.Join(bootlog.Kinds(), ", "))
	}
}
