// Package knownhosts keeps gkessh's (and gcloud's) known_hosts file and
// decides which host keys a node may present: recorded, guest-published
// or trusted on first use, per the strict mode.
package knownhosts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/atomicfile"
	"github.com/gkessh/gkessh/internal/filelock"
	"github.com/gkessh/gkessh/internal/gce"
)

// KnownHostsName is gcloud's known_hosts file under ~/.ssh, shared with it.
const KnownHostsName = "google_compute_known_hosts"

// DefaultKnownHostsPath returns ~/.ssh/google_compute_known_hosts.
func DefaultKnownHostsPath() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("known hosts: no home directory: set HOME: %w", err)
	}
	return filepath.Join(home, ".ssh", KnownHostsName), nil
}

// HostAlias is the name an instance's host keys are recorded under,
// gcloud's HostKeyAlias "compute.<instance id>". The id, unlike the name,
// changes when the VM is recreated, so a rebuilt node is a new host.
func HostAlias(instanceID uint64) string {
	return "compute." + strconv.FormatUint(instanceID, 10)
}

// KnownHosts is a known_hosts file in OpenSSH's format. Lines gkessh writes
// look like gcloud's: "compute.123 ssh-ed25519 AAAA...". The zero value
// with a Path reads the file at every call; Shared returns one that
// parses it once for many nodes.
type KnownHosts struct {
	Path string
	// shared, when set, is the parsed file its copies share.
	shared *shared
}

// Shared returns the KnownHosts for path whose copies share one parse of
// the file, for a process that checks many nodes: the file is parsed again
// only when it changes (its inode, size or time), the shared copy's own
// writes update it in place, and Adds made at the same time are written
// together, as one rewrite. Without it, N nodes cost N reads of a file of
// N nodes' lines.
func Shared(path string) KnownHosts {
	return KnownHosts{Path: path, shared: &shared{}}
}

// Recorded is what a known_hosts file says about one host.
type Recorded struct {
	Keys    []ssh.PublicKey // trusted keys
	Revoked []ssh.PublicKey // @revoked keys, refused even if trusted
}

// shared is a known_hosts file parsed, and the Adds waiting to be written.
type shared struct {
	mu    sync.Mutex // guards idx, queue and writing
	idx   *index
	queue []*addition
	// writing: this copy is rewriting the file as idx's lines plus some
	// Adds'. Until it is done idx stands for the file: a Lookup meanwhile
	// would otherwise see a new file and parse it all again, as a cold
	// fleet's lookups did at most of its first contacts' rewrites.
	writing bool
	// flush is held by the one writing a batch; those who queue meanwhile
	// wait for it, and the next to take it writes all of theirs at once.
	flush sync.Mutex
	// parses counts the file's parses: the point of sharing is that a
	// fleet's lookups and adds do not parse it again and again.
	parses int
}

// reindex makes s.idx a parse of data; s.mu is held.
func (s *shared) reindex(data []byte, info fs.FileInfo) {
	s.idx = parseIndex(data, info)
	s.parses++
}

// index is a parsed known_hosts file, by host name.
type index struct {
	info    fs.FileInfo // of the file as parsed; nil when there was none
	entries []entry
	byHost  map[string][]int // plain host names: the entries naming them
	hashed  []int            // entries with a hashed host name
}

type entry struct {
	marker string
	hosts  []string
	key    ssh.PublicKey
}

func parseIndex(data []byte, info fs.FileInfo) *index {
	idx := &index{info: info, byHost: map[string][]int{}}
	for len(data) > 0 {
		marker, hosts, key, _, rest, err := ssh.ParseKnownHosts(data)
		data = rest
		if err != nil || key == nil {
			continue // ssh itself skips lines it cannot parse
		}
		idx.add(entry{marker: marker, hosts: hosts, key: key})
	}
	return idx
}

func (idx *index) add(e entry) {
	i := len(idx.entries)
	idx.entries = append(idx.entries, e)
	hashed := false
	for _, h := range e.hosts {
		if strings.HasPrefix(h, "|1|") {
			hashed = true
		} else if l := idx.byHost[h]; len(l) == 0 || l[len(l)-1] != i {
			idx.byHost[h] = append(l, i)
		}
	}
	if hashed {
		idx.hashed = append(idx.hashed, i)
	}
}

// lookup is what the file records for alias, in the file's order.
func (idx *index) lookup(alias string) Recorded {
	lines := idx.byHost[alias]
	for _, i := range idx.hashed {
		if !slices.Contains(lines, i) && matchesHost(idx.entries[i].hosts, alias) {
			lines = append(slices.Clip(lines), i)
		}
	}
	if len(idx.hashed) > 0 {
		lines = slices.Sorted(slices.Values(lines))
	}
	var rec Recorded
	for _, i := range lines {
		switch e := idx.entries[i]; e.marker {
		case "":
			rec.Keys = append(rec.Keys, e.key)
		case "revoked":
			rec.Revoked = append(rec.Revoked, e.key)
		}
	}
	return rec
}

// sameFile says whether two stats are of one version of a file: gkessh
// and ssh-keygen replace the file (a new inode); an editor changes its
// size or time.
func sameFile(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// readFile reads the file and stats what it read; a missing file is
// empty, with no stat.
func readFile(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("known hosts: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("known hosts: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("known hosts: %w", err)
	}
	return data, info, nil
}

// state is k's shared parse, or a fresh one for a KnownHosts not Shared.
func (k KnownHosts) state() *shared {
	if k.shared != nil {
		return k.shared
	}
	return &shared{}
}

// current brings s.idx up to date with the file; s.mu is held.
func (s *shared) current(path string) error {
	if s.idx != nil && s.writing {
		return nil
	}
	if s.idx != nil {
		info, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			info, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("known hosts: %w", err)
		}
		if sameFile(s.idx.info, info) {
			return nil
		}
	}
	data, info, err := readFile(path)
	if err != nil {
		return err
	}
	s.reindex(data, info)
	return nil
}

// Lookup returns the keys recorded for alias. A line applies when one of
// its comma-separated host names is exactly alias (or hashes to it); unlike
// gcloud's prefix test, compute.12 does not match compute.123. A missing
// file records nothing.
func (k KnownHosts) Lookup(alias string) (Recorded, error) {
	s := k.state()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.current(k.Path); err != nil {
		return Recorded{}, err
	}
	return s.idx.lookup(alias), nil
}

func matchesHost(hosts []string, alias string) bool {
	for _, h := range hosts {
		if h == alias || (strings.HasPrefix(h, "|1|") && hashedHostMatches(h, alias)) {
			return true
		}
	}
	return false
}

// hashedHostMatches checks an OpenSSH HashKnownHosts entry,
// "|1|base64(salt)|base64(HMAC-SHA1(salt, host))".
func hashedHostMatches(entry, host string) bool {
	parts := strings.Split(entry, "|")
	if len(parts) != 4 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	sum, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(host))
	return hmac.Equal(mac.Sum(nil), sum)
}

// Add appends a line for each key not yet recorded for alias. It rewrites
// the file atomically (WriteFile) under a lock on Path+".lock", so a full
// disk never leaves a truncated line and concurrent gkessh processes never
// lose each other's lines; the file and ~/.ssh are created 0600 and 0700.
// ctx, and a minute, bound the wait for the lock. The alias must be a
// HostAlias or an instance name: anything else could add hosts, markers or
// lines of its own.
func (k KnownHosts) Add(ctx context.Context, alias string, keys ...ssh.PublicKey) error {
	if err := checkAlias(alias); err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	a := &addition{alias: alias, keys: keys}
	k.addAll(ctx, k.state(), a)
	return a.err
}

// addAll writes the additions, with any others queued meanwhile, and sets
// each one's err. The writer's ctx bounds the wait for the lock of all it
// writes: in gkessh they share the command's.
func (k KnownHosts) addAll(ctx context.Context, s *shared, adds ...*addition) {
	s.mu.Lock()
	s.queue = append(s.queue, adds...)
	s.mu.Unlock()
	// Whoever holds flush writes everything queued by then: a fleet's
	// first contacts cost a few rewrites of the file, not one each.
	s.flush.Lock()
	defer s.flush.Unlock()
	s.mu.Lock()
	batch := s.queue
	s.queue = nil
	s.mu.Unlock()
	if len(batch) > 0 {
		err := k.locked(ctx, func() error { return k.add(s, batch) })
		for _, b := range batch {
			b.err = err
		}
	}
}

// addition is one Add waiting to be written, and then how that went.
type addition struct {
	alias string
	keys  []ssh.PublicKey
	err   error
}

// locked runs fn holding the lock on Path+".lock", which every gkessh
// process takes to rewrite the file, so none loses another's lines.
func (k KnownHosts) locked(ctx context.Context, fn func() error) error {
	if err := os.MkdirAll(filepath.Dir(k.Path), 0o700); err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	// The lock is held for one small read and write; the bound only keeps
	// a stuck holder from hanging gkessh.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	release, err := filelock.Lock(ctx, k.Path+".lock")
	if err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	defer release()
	return fn()
}

// add writes batch's keys that the file does not record yet, in one
// rewrite, and keeps s.idx in step with what it wrote.
func (k KnownHosts) add(s *shared, batch []*addition) error {
	old, info, err := readFile(k.Path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.idx == nil || !sameFile(s.idx.info, info) {
		s.reindex(old, info)
	}
	idx := s.idx
	var b bytes.Buffer
	var added []entry
	for _, a := range batch {
		rec := idx.lookup(a.alias).Keys
		for _, e := range added {
			if e.hosts[0] == a.alias {
				rec = append(rec, e.key)
			}
		}
		for _, key := range a.keys {
			if containsKey(rec, key) {
				continue
			}
			rec = append(rec, key) // also drops duplicates in keys
			added = append(added, entry{hosts: []string{a.alias}, key: key})
			fmt.Fprintf(&b, "%s %s", a.alias, ssh.MarshalAuthorizedKey(key))
		}
	}
	s.writing = b.Len() > 0
	s.mu.Unlock()
	if b.Len() == 0 {
		return nil
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	werr := write(k.Path, append(old, b.Bytes()...))
	now, err := os.Stat(k.Path)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writing = false
	switch {
	case werr != nil:
		return werr
	case s.idx != idx:
		// Someone read the file meanwhile: their parse is the newer one.
	case err != nil:
		s.idx = nil // read it again next time
	default:
		for _, e := range added {
			idx.add(e)
		}
		idx.info = now
	}
	return nil
}

// checkAlias accepts compute.<id> and instance names.
func checkAlias(alias string) error {
	if id, ok := strings.CutPrefix(alias, "compute."); ok {
		if n, err := strconv.ParseUint(id, 10, 64); err == nil && HostAlias(n) == alias {
			return nil
		}
	}
	return gce.CheckName(alias)
}

// Pinned is what Pin did.
type Pinned struct {
	Added    []ssh.PublicKey // published keys recorded: all on first contact, else those beside the recorded ones
	Replaced []ssh.PublicKey // the recorded keys the published ones replaced
}

// Pin is gkessh's one host key policy, for logins, config-ssh and
// inventory alike. published are the keys the guest of node publishes,
// read from source over the authenticated Compute API. On first contact
// they are recorded for alias; published keys beside every recorded one
// are added to them. When a recorded key is no longer published, Pin
// refuses with a *HostKeyChangedError unless accept is set; then the
// published keys replace every key recorded for alias, so stale keys do
// not pile up. ctx bounds the wait for the file's lock, as with Add.
func (k KnownHosts) Pin(ctx context.Context, node, alias, source string, published []ssh.PublicKey, accept bool) (Pinned, error) {
	pinned, errs := k.PinAll(ctx, []Pin{{Node: node, Alias: alias, Source: source, Published: published}}, accept)
	return pinned[0], errs[0]
}

// Pin is one node's published host keys, for PinAll.
type Pin struct {
	Node      string // instance name, for messages
	Alias     string // recorded under
	Source    string // where Published came from, for messages
	Published []ssh.PublicKey
}

// PinAll applies Pin to many nodes, reading the file once and writing
// every first contact in one rewrite; a listing of N nodes would rewrite
// a growing file N times, one Pin at a time. It returns what it did for
// each pin, and the error of each (nil when pinned).
func (k KnownHosts) PinAll(ctx context.Context, pins []Pin, accept bool) ([]Pinned, []error) {
	if k.shared == nil {
		k = Shared(k.Path) // one parse for all of them
	}
	pinned := make([]Pinned, len(pins))
	errs := make([]error, len(pins))
	var adds []*addition
	var added []int
	for i, p := range pins {
		if len(p.Published) == 0 {
			continue
		}
		rec, err := k.Lookup(p.Alias)
		switch {
		case err != nil:
			errs[i] = err
		case len(rec.Keys) == 0:
			if errs[i] = checkAlias(p.Alias); errs[i] != nil {
				errs[i] = fmt.Errorf("known hosts: %w", errs[i])
				continue
			}
			pinned[i].Added = p.Published
			adds, added = append(adds, &addition{alias: p.Alias, keys: p.Published}), append(added, i)
		case !slices.ContainsFunc(p.Published, func(key ssh.PublicKey) bool { return !containsKey(rec.Keys, key) }):
		case !slices.ContainsFunc(rec.Keys, func(key ssh.PublicKey) bool { return !containsKey(p.Published, key) }):
			// Every recorded key is still published: more keys of the
			// same guest (ssh, or gcloud through it, recorded only the
			// one it was shown). They join the recorded ones.
			more := slices.DeleteFunc(slices.Clone(p.Published), func(key ssh.PublicKey) bool { return containsKey(rec.Keys, key) })
			pinned[i].Added = more
			adds, added = append(adds, &addition{alias: p.Alias, keys: more}), append(added, i)
		case !accept:
			errs[i] = &HostKeyChangedError{Node: p.Node, Alias: p.Alias, File: k.Path, Old: rec.Keys, New: p.Published, Source: p.Source}
		default:
			pinned[i].Replaced, errs[i] = rec.Keys, k.Replace(ctx, p.Alias, p.Published...)
		}
	}
	if len(adds) > 0 {
		k.addAll(ctx, k.shared, adds...)
		for j, i := range added {
			errs[i] = adds[j].err
		}
	}
	return pinned, errs
}

// Replace rewrites the file with keys as the only keys recorded for alias:
// lines naming only alias go, alias leaves lines naming other hosts too,
// and @revoked lines stay. The file is replaced atomically, under the
// same lock as Add (ctx bounds the wait for it), and keeps its mode.
func (k KnownHosts) Replace(ctx context.Context, alias string, keys ...ssh.PublicKey) error {
	if err := checkAlias(alias); err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	err := k.locked(ctx, func() error { return k.replace(alias, keys) })
	if s := k.shared; s != nil {
		s.mu.Lock()
		s.idx = nil // rare: read the file again rather than patch the parse
		s.mu.Unlock()
	}
	return err
}

func (k KnownHosts) replace(alias string, keys []ssh.PublicKey) error {
	data, err := os.ReadFile(k.Path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("known hosts: %w", err)
	}
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if kept, ok := withoutHost(line, alias); ok {
			out.WriteString(kept)
		}
	}
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteByte('\n')
	}
	for _, key := range keys {
		fmt.Fprintf(&out, "%s %s", alias, ssh.MarshalAuthorizedKey(key))
	}
	return write(k.Path, out.Bytes())
}

// withoutHost returns line with alias taken out of its host list, and
// false when nothing of the line is left. Lines it cannot read, comments
// and @revoked lines stay as they are.
func withoutHost(line, alias string) (string, bool) {
	marker, hosts, _, _, _, err := ssh.ParseKnownHosts([]byte(line))
	if err != nil || marker == "revoked" || !matchesHost(hosts, alias) {
		return line, line != ""
	}
	fields := strings.Fields(line)
	hostField := 0
	if marker != "" {
		hostField = 1
	}
	var rest []string
	for _, h := range strings.Split(fields[hostField], ",") {
		if !matchesHost([]string{h}, alias) {
			rest = append(rest, h)
		}
	}
	if len(rest) == 0 {
		return "", false
	}
	fields[hostField] = strings.Join(rest, ",")
	return strings.Join(fields, " ") + "\n", true
}

// write replaces the file at path whole, as ssh's own files are kept: a
// symlinked file is written through and keeps its mode, a read-only one
// is refused.
func write(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, atomicfile.Options{KeepMode: true, FollowSymlink: true}); err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	return nil
}

// HostKeyChangedError is Pin refusing a change: the guest of Node now
// publishes host keys (New, read from Source) that File does not record
// for Alias (Old).
type HostKeyChangedError struct {
	Node   string
	Alias  string
	File   string
	Old    []ssh.PublicKey
	New    []ssh.PublicKey
	Source string
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("host keys of %s (%s) have CHANGED: %s records %s, but %s now hold %s. "+
		"Either the node was rebuilt or its keys regenerated, or someone is tampering with it",
		e.Node, e.Alias, e.File, Fingerprints(e.Old), e.Source, Fingerprints(e.New))
}

// Fingerprints lists keys as "TYPE SHA256:…, …".
func Fingerprints(keys []ssh.PublicKey) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	return strings.Join(out, ", ")
}

func containsKey(keys []ssh.PublicKey, key ssh.PublicKey) bool {
	return slices.ContainsFunc(keys, func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), key.Marshal()) })
}

// StrictMode is --strict-host-key-checking.
type StrictMode string

// The modes, named as OpenSSH's StrictHostKeyChecking values.
const (
	// StrictYes accepts only recorded keys or keys the guest published
	// through the Compute API.
	StrictYes StrictMode = "yes"
	// StrictAcceptNew is StrictYes, plus trust on first use when the
	// guest published no keys. The default.
	StrictAcceptNew StrictMode = "accept-new"
	// StrictNo accepts any key, warning when it differs from the record.
	StrictNo StrictMode = "no"
	// StrictAsk is gcloud's (and OpenSSH's) "ask". gkessh cannot ask, so
	// for its own logins it refuses what it would have asked about, as
	// OpenSSH does without a terminal; ssh configs get "ask" as it is.
	StrictAsk StrictMode = "ask"
)

// ParseStrictMode parses a --strict-host-key-checking value; "" is the
// default, accept-new.
func ParseStrictMode(s string) (StrictMode, error) {
	switch m := StrictMode(strings.ToLower(s)); m {
	case "":
		return StrictAcceptNew, nil
	case StrictYes, StrictAcceptNew, StrictNo, StrictAsk:
		return m, nil
	}
	return "", fmt.Errorf("invalid value %q: want yes, no, ask or accept-new", s)
}

// HostKeyError is a host key refused: one that differs from the recorded
// keys, a revoked one, or (under StrictYes) a host with no known key. Like
// knownhosts.KeyError, Want is empty for an unknown host.
type HostKeyError struct {
	Node  string // instance name, for messages; may be empty
	Alias string
	File  string
	Got   ssh.PublicKey
	Want  []ssh.PublicKey
	// Revoked: Got is marked @revoked in File.
	Revoked bool
	// Published: the guest currently publishes Got, as it does after a
	// host key rotation.
	Published bool
}

func (e *HostKeyError) Error() string {
	got := e.Got.Type() + " " + ssh.FingerprintSHA256(e.Got)
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key %s of %s is marked @revoked in %s: refusing to connect", got, e.Alias, e.File)
	case len(e.Want) == 0:
		return fmt.Sprintf("host %s is unknown and its guest published no host keys, and the policy trusts only known keys: add its key to %s first, or trust it on first use", e.Alias, e.File)
	}
	name := e.Alias
	if e.Node != "" {
		name = e.Node + " (" + e.Alias + ")"
	}
	msg := fmt.Sprintf("host key of %s has CHANGED: the server presented %s, but %s records %s. Someone could be intercepting the connection (man-in-the-middle attack), or the node's host keys were regenerated.",
		name, got, e.File, Fingerprints(e.Want))
	if e.Published {
		return msg + " Its guest publishes the presented key"
	}
	return msg + fmt.Sprintf(" Its guest does not publish the presented key. If you trust the change anyway, remove the old keys with: ssh-keygen -R %s -f %s", e.Alias, e.File)
}

// Verifier checks one node's host key against a known_hosts file.
type Verifier struct {
	File  KnownHosts
	Node  string // instance name, for messages
	Alias string // HostAlias of the instance
	// Source says where Published came from, for messages.
	Source string
	// Accept lets published keys replace changed recorded ones (Pin).
	Accept bool
	// Published are the keys the guest published as guest attributes
	// (hostkeys/). They come over the authenticated Compute API, so on
	// first contact they are pinned instead of trusting the network.
	Published []ssh.PublicKey
	// Publish, when set, reads Published only when they can matter: before
	// connecting on first contact (nothing recorded for Alias) or under
	// Accept, else once the server presents a key not recorded for Alias.
	// A login to a known node that presents a recorded key so costs no
	// read: the key proves the server is the host recorded. Never called
	// under StrictNo, which trusts nothing it reads.
	Publish func() ([]ssh.PublicKey, error)
	// OnPin, when set, hears what Pin recorded or replaced, when it did
	// something: from Prepare, or from the Callback when the keys are read
	// late.
	OnPin func(Pinned)
	Mode  StrictMode
	// Warn receives StrictNo's warnings and trust-on-first-use notes.
	Warn io.Writer
}

// HostKeyCheck is a prepared host key check.
type HostKeyCheck struct {
	// Callback verifies the key the server presents; it may be used for
	// several connection attempts.
	Callback ssh.HostKeyCallback
	// Algorithms asks the server for the recorded key types, so that a
	// server holding several keys presents one that can be checked.
	// Empty when nothing is recorded yet.
	Algorithms []string
}

// Prepare reads the recorded keys and applies Pin to the published ones
// (except under StrictNo, which trusts nothing it reads): recorded on first
// contact, a change refused unless Accept. With none published,
// StrictAcceptNew and StrictNo record the first key the server presents.
// With Publish, a node with recorded keys gets the check of late, which
// reads the published keys only for a key not recorded. ctx bounds the
// waits for the file's lock, the Callback's included.
func (v Verifier) Prepare(ctx context.Context) (*HostKeyCheck, error) {
	if v.Publish != nil && v.Mode != StrictNo {
		rec, err := v.File.Lookup(v.Alias)
		if err != nil {
			return nil, err
		}
		if len(rec.Keys) > 0 && !v.Accept {
			return v.late(ctx, rec), nil
		}
		if v.Published, err = v.Publish(); err != nil {
			return nil, err
		}
	}
	return v.prepare(ctx)
}

// late is the check of a node with recorded keys rec that reads the
// published keys only when the server presents a key rec does not trust;
// then it is Prepare's check with them, as if read up front. A recorded
// key is accepted without them: Pin would only add keys beside it, or
// refuse a change that the server, proving it holds a recorded key, does
// not show.
func (v Verifier) late(ctx context.Context, rec Recorded) *HostKeyCheck {
	var once sync.Once
	var full *HostKeyCheck
	var err error
	check := &HostKeyCheck{Algorithms: algorithms(rec.Keys)}
	check.Callback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		if containsKey(rec.Keys, key) && !containsKey(rec.Revoked, key) {
			return nil
		}
		once.Do(func() {
			if v.Published, err = v.Publish(); err == nil {
				full, err = v.prepare(ctx)
			}
		})
		if err != nil {
			return err
		}
		return full.Callback(host, remote, key)
	}
	return check
}

// prepare is Prepare with v.Published read.
func (v Verifier) prepare(ctx context.Context) (*HostKeyCheck, error) {
	check := &HostKeyCheck{}
	if v.Mode != StrictNo {
		pinned, err := v.File.Pin(ctx, v.Node, v.Alias, v.Source, v.Published, v.Accept)
		if err != nil {
			return nil, err
		}
		if v.OnPin != nil && (len(pinned.Added) > 0 || len(pinned.Replaced) > 0) {
			v.OnPin(pinned)
		}
	}
	rec, err := v.File.Lookup(v.Alias)
	if err != nil {
		return nil, err
	}
	check.Algorithms = algorithms(rec.Keys)
	warn := v.Warn
	if warn == nil {
		warn = io.Discard
	}
	var mu sync.Mutex // guards rec.Keys, grown by trust on first use
	// The address is ignored: through a tunnel it says nothing about the
	// node; the alias names it.
	check.Callback = func(_ string, _ net.Addr, key ssh.PublicKey) error {
		mu.Lock()
		defer mu.Unlock()
		keyErr := &HostKeyError{Node: v.Node, Alias: v.Alias, File: v.File.Path, Got: key, Want: rec.Keys, Published: containsKey(v.Published, key)}
		switch {
		case containsKey(rec.Revoked, key):
			keyErr.Revoked = true
			return keyErr
		case containsKey(rec.Keys, key):
			return nil
		case len(rec.Keys) > 0 && v.Mode == StrictNo:
			fmt.Fprintf(warn, "WARNING: %v\nContinuing because host keys go unchecked.\n", keyErr)
			return nil
		case len(rec.Keys) > 0 || v.Mode == StrictYes || v.Mode == StrictAsk:
			return keyErr
		}
		fmt.Fprintf(warn, "Permanently added %s (%s %s) to %s: the guest published no host keys.\n", v.Alias, key.Type(), ssh.FingerprintSHA256(key), v.File.Path)
		if err := v.File.Add(ctx, v.Alias, key); err != nil {
			return err
		}
		rec.Keys = append(rec.Keys, key)
		return nil
	}
	return check, nil
}

// algorithms lists the host key algorithms that produce the given keys.
func algorithms(keys []ssh.PublicKey) []string {
	var out []string
	for _, k := range keys {
		names := []string{k.Type()}
		if k.Type() == ssh.KeyAlgoRSA {
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}
