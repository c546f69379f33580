package cli

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gkessh/gkessh/internal/transport"
)

// checkNetwork says how connections reach Google and where each setting
// comes from: the proxy, the CAs, the client certificate (a failed check
// when it is required and missing or out of date), and the endpoints and
// headers that are not Google's defaults. It reports whether the settings
// could be read at all.
func (d *doctor) checkNetwork(ctx context.Context) bool {
	tr, err := d.deps.transport(d.globalOptions)
	if err != nil {
		d.fail("network settings: %s", withHint(err))
		return false
	}
	if p, origin := tr.Proxy(); p != "" {
		d.ok("proxy %s, from %s", p, origin)
	} else {
		d.ok("no proxy: connections go straight to Google")
	}
	if what, origin, err := tr.Roots(); err != nil {
		d.fail("CAs: %s", withHint(err))
	} else {
		d.ok("servers' certificates checked against %s%s", what, from(origin))
	}
	switch cert, src, err := tr.ClientCertificate(ctx); {
	case err != nil:
		d.fail("client certificate: %s", withHint(err))
	case cert != nil:
		d.ok("client certificate %s, expires %s (in %s), from %s", printable(cert.Subject.String()),
			cert.NotAfter.UTC().Format(time.RFC3339), roughly(time.Until(cert.NotAfter)), src)
	}
	defaults := true
	for _, api := range transport.APIs {
		if e := tr.Endpoint(api); e.Source != "" {
			d.ok("%s API at %s, from %s", api, e.URL, e.Source)
			defaults = false
		}
	}
	if e := tr.Relay(); e.Source != "" {
		d.ok("IAP relay at %s, from %s", e.URL, e.Source)
		defaults = false
	}
	if all, _ := tr.TokenHost(); all != "" {
		d.ok("OAuth tokens from %s, from auth/token_host", all)
		defaults = false
	}
	if defaults {
		d.ok("endpoints: Google's")
	}
	h := tr.Headers()
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		d.ok("%s: %s, from %s", name, printable(h[name].Value), h[name].Source)
	}
	return true
}

// from is ", from ORIGIN", or "" when there is none.
func from(origin string) string {
	if origin == "" {
		return ""
	}
	return fmt.Sprintf(", from %s", origin)
}

// roughly is d in whole days, hours or minutes, as a person reads it.
func roughly(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", (d+12*time.Hour)/(24*time.Hour))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", (d+30*time.Minute)/time.Hour)
	}
	return fmt.Sprintf("%d minutes", (d+30*time.Second)/time.Minute)
}
