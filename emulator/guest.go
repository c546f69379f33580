//go:build unix

package emulator

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"
)

// guestRecheck is how often the guest agent re-evaluates keys with no
// metadata change, like the real agent's 60 s long-poll timeout.
const guestRecheck = 60 * time.Second

// guestView is the part of the metadata a guest agent acts on.
type guestView struct {
	osLogin bool // OS Login is on: no metadata key is installed
	// osLoginKeys are, under OS Login, the profile keys that may log in
	// (Server.osLoginView).
	osLoginKeys string
	keys        string // the ssh-keys and sshKeys values it honours, joined by newlines
}

// pendingView is a metadata state that reaches the guest at a given time.
type pendingView struct {
	at   time.Time
	view guestView
}

// startGuest starts the node's guest accounts daemon and returns its stop
// function, which returns once the daemon's goroutine has ended.
func (s *Server) startGuest(n *Node) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// The boot-time view is taken here, not in the goroutine: a change
	// made right after AddNode returns must count as a change (and take
	// the propagation delay), however late the goroutine starts.
	changed, cur, _ := s.guestSnapshot(n)
	go func() {
		defer close(done)
		s.runGuest(ctx, n, changed, cur)
	}()
	return func() {
		cancel()
		<-done
	}
}

// runGuest is the guest agent's loop. Like the real agent's long poll, it
// wakes at once on every metadata change; each change then takes the
// propagation delay (as set at the time of the change) to reach the node, so
// a key upserted at t is never installed before t+delay. It also wakes when
// the next key expires, and every guestRecheck.
func (s *Server) runGuest(ctx context.Context, n *Node, changed <-chan struct{}, cur guestView) {
	var pending []pendingView // in order of arrival; at never decreases
	// invalid are the lines the agent found invalid (expired ones too):
	// like Google's agent (metadatasshkey.go, invalidKeys), it remembers
	// them for as long as it runs and skips them unread after that.
	invalid := map[string]string{}
	logged := map[string]bool{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		for len(pending) > 0 && !pending[0].at.After(now) {
			cur, pending = pending[0].view, pending[1:]
		}
		before := len(invalid)
		want, expiry := authorizedKeys(cur, now, invalid, func(line string, err error) {
			if !logged[line] {
				logged[line] = true
				s.cfg.Logf("node %s: guest agent skips metadata key line %q: %v", n.Name, line, err)
			}
		})
		if len(invalid) != before {
			n.mu.Lock()
			n.invalidKeys = maps.Clone(invalid)
			n.mu.Unlock()
		}
		s.install(n, want)
		wake := now.Add(guestRecheck)
		if !expiry.IsZero() && expiry.Before(wake) {
			wake = expiry
		}
		if len(pending) > 0 && pending[0].at.Before(wake) {
			wake = pending[0].at
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-changed:
			var v guestView
			var delay time.Duration
			changed, v, delay = s.guestSnapshot(n)
			last, at := cur, time.Now().Add(delay)
			if len(pending) > 0 {
				// Changes arrive in order, even if the delay shrank meanwhile.
				p := pending[len(pending)-1]
				last, at = p.view, laterOf(at, p.at)
			}
			if v != last {
				pending = append(pending, pendingView{at, v})
			}
		}
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// guestSnapshot reads what the node's guest agent acts on, the channel closed
// by the next metadata change, and the propagation delay.
func (s *Server) guestSnapshot(n *Node) (changed <-chan struct{}, v guestView, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	v = viewOf(&n.metadata, &s.project.Metadata)
	if v.osLogin {
		v.osLoginKeys = s.osLoginView(time.Now())
	}
	return s.changed, v, s.delay
}

// viewOf applies the guest agent's rules (google-guest-agent
// internal/metadata/unmarshal.go and metadatasshkey.go findValidKeys) to
// instance and project metadata: an instance sshKeys that is not empty,
// even one of blanks only, blocks the project's keys and adds its lines
// after the instance's ssh-keys; else instance block-project-ssh-keys →
// instance ssh-keys only; else instance ssh-keys plus project ssh-keys and
// sshKeys. The project's own block-project-ssh-keys is ignored, as every
// agent does. Flags are read as the agent reads them (agent.go).
func viewOf(inst, proj *compute.Metadata) guestView {
	if agentOSLogin(inst, proj) {
		return guestView{osLogin: true}
	}
	instKeys, _ := metadataValue(inst, "ssh-keys")
	instLegacy, _ := metadataValue(inst, "sshKeys")
	parts := []string{instKeys}
	switch {
	case instLegacy != "":
		parts = []string{instKeys, instLegacy}
	case !blocksProjectKeys(inst):
		projKeys, _ := metadataValue(proj, "ssh-keys")
		projLegacy, _ := metadataValue(proj, "sshKeys")
		parts = append(parts, projKeys, projLegacy)
	}
	return guestView{keys: strings.Join(parts, "\n")}
}

// blocksProjectKeys is the instance's block-project-ssh-keys as the agent
// reads it; a value that does not parse counts as unset.
func blocksProjectKeys(inst *compute.Metadata) bool {
	b, _ := agentBool(inst, "block-project-ssh-keys")
	return b
}

// authorizedKeys returns the keys of v a guest agent installs at now, by
// user, and when the first of them expires (zero: none does). Lines the
// agent finds invalid, expired ones included, go to skip and into invalid
// (line → why), and a line already in invalid is skipped unread, as the
// agent remembers them; a user name useradd refuses goes to skip only, since
// the agent tries it again each time.
func authorizedKeys(v guestView, now time.Time, invalid map[string]string, skip func(line string, err error)) (map[string][]ssh.PublicKey, time.Time) {
	out := map[string][]ssh.PublicKey{}
	var expiry time.Time
	if v.osLogin {
		for _, l := range strings.Split(v.osLoginKeys, "\n") {
			user, key, ok := strings.Cut(l, "\x00")
			if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key)); ok && err == nil {
				out[user] = append(out[user], pk)
			}
		}
		return out, expiry
	}
	for _, line := range agentLines(v.keys) {
		if _, seen := invalid[line]; seen {
			continue
		}
		k, err := agentParse(line, now)
		if err != nil {
			skip(line, err)
			if !errors.Is(err, errUseraddRefuses) {
				invalid[line] = err.Error()
			}
			continue
		}
		if !k.expireOn.IsZero() && (expiry.IsZero() || k.expireOn.Before(expiry)) {
			expiry = k.expireOn
		}
		if !slices.ContainsFunc(out[k.user], func(pk ssh.PublicKey) bool { return sameKey(pk, k.key) }) {
			out[k.user] = append(out[k.user], k.key)
		}
	}
	return out, expiry
}

func sameKey(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// install gives the node's SSH server the keys, if they changed. The map is
// never modified afterwards, so the server may keep it.
func (s *Server) install(n *Node, want map[string][]ssh.PublicKey) {
	n.mu.Lock()
	if maps.EqualFunc(n.keys, want, func(a, b []ssh.PublicKey) bool { return slices.EqualFunc(a, b, sameKey) }) {
		n.mu.Unlock()
		return
	}
	n.keys = want
	sshd := n.sshd
	n.mu.Unlock()
	if sshd == nil {
		return
	}
	if err := sshd.SetAuthorized(want); err != nil {
		s.cfg.Logf("node %s: guest agent: install keys: %v", n.Name, err)
	}
}
