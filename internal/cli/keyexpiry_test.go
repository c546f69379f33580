//go:build unix

package cli

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKeyExpiryEveryCommand: every command that puts the user's key into
// metadata or the OS Login profile (each that honours --key-expire-after,
// read from globalsOf, so a new one is covered) writes it with the expiry
// asked for, by either flag: --ssh-key-expiration's time (to the second in
// a metadata line, to the microsecond in the profile), however long the
// command took before its write, and a lifetime counted from a moment
// within the run (bounded by its start and end on the same clock). The
// commands that write no key (config-ssh, inventory, doctor, keys list,
// remove, prune, tunnel) refuse both flags: TestGlobalFlagsEveryPosition.
func TestKeyExpiryEveryCommand(t *testing.T) {
	t.Parallel()
	var paths []string
	for path, names := range globalsOf {
		if slices.Contains(names, "key-expire-after") != slices.Contains(names, "ssh-key-expiration") {
			t.Errorf("%s honours one of --key-expire-after and --ssh-key-expiration, not both", path)
		}
		if slices.Contains(names, "key-expire-after") {
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	// A microsecond short of a whole second: a line given the lifetime
	// left when the flag was read, written a moment later, would expire a
	// second late once its format drops the fraction.
	at := time.Now().Add(50 * time.Hour).UTC().Truncate(time.Second).Add(time.Second - time.Microsecond)
	for _, path := range paths {
		drv, ok := drivers[path]
		if !ok {
			t.Errorf("no driver for %q: add one to drivers", path)
			continue
		}
		for _, tt := range []struct {
			flag, value string
			lifetime    time.Duration // 0: at
		}{
			{"ssh-key-expiration", at.Format(time.RFC3339Nano), 0},
			{"ssh-key-expire-after", "7h", 7 * time.Hour},
		} {
			for _, osLogin := range []bool{false, true} {
				if osLogin && path == "gkessh audit" {
					continue // it reaches only nodes that read metadata keys
				}
				name := strings.TrimPrefix(path, "gkessh ") + "/" + tt.flag + map[bool]string{true: "_oslogin"}[osLogin]
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					pe := newProbeEnv(t)
					if drv.setup != nil {
						drv.setup(t, pe)
					}
					written, precision := expireOn, time.Second
					if osLogin {
						enabled := "TRUE"
						if err := pe.srv.SetProjectMetadata(map[string]*string{"enable-oslogin": &enabled}); err != nil {
							t.Fatal(err)
						}
						if err := pe.srv.SetInstanceMetadata(pe.nodeA, map[string]*string{"enable-oslogin": &enabled}); err != nil {
							t.Fatal(err)
						}
						written, precision = expirationUsec, time.Microsecond
					}
					p := flagProbe{value: func(*probeEnv, string) string { return tt.value }}
					o := runProbeIn(t, pe, drv, p, &typed{name: tt.flag})
					end := time.Now()
					var got []time.Time
					for _, l := range strings.Split(o.stateDiff, "\n") {
						if m := written.FindStringSubmatch(l); m != nil && strings.HasPrefix(l, "+ S ") {
							got = append(got, parseExpiry(t, m[1]))
						}
					}
					if len(got) == 0 {
						t.Fatalf("%s: no expiring key written:\n%s", o.args, o)
					}
					lo, hi := at.Truncate(precision), at.Truncate(precision)
					if tt.lifetime != 0 {
						lo, hi = o.start.Add(tt.lifetime).Truncate(precision), end.Add(tt.lifetime)
					}
					for _, e := range got {
						if e.Before(lo) || e.After(hi) {
							t.Errorf("%s: a key expires %v, want between %v and %v", o.args, e.UTC(), lo.UTC(), hi.UTC())
						}
					}
				})
			}
		}
	}
}

// expirationUsec finds an OS Login key's expiry in the probe's state.
var expirationUsec = regexp.MustCompile(`"expirationTimeUsec":"([0-9]+)"`)

// parseExpiry reads a metadata line's expireOn or a profile key's
// microseconds.
func parseExpiry(t *testing.T, s string) time.Time {
	t.Helper()
	if usec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMicro(usec)
	}
	e, err := time.Parse("2006-01-02T15:04:05-0700", s)
	if err != nil {
		t.Fatalf("expiry %q: %v", s, err)
	}
	return e
}
