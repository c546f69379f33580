package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/metakeys"
	"github.com/gkessh/gkessh/keys"
)

// keysOptions are the flags of the keys subcommands.
type keysOptions struct {
	globalOptions
	keyOptions
	Node       string
	Audit      bool
	Fail       bool // exit exitProblems when the audit finds any
	JSON       bool // keys list --format json
	AllExpired bool
}

func keysCommand(d *deps, stdio Stdio) *ucli.Command {
	keysAction := func(run func(context.Context, keysOptions, *deps, Stdio) error) ucli.ActionFunc {
		return action(d, stdio, keysFlagValues, run)
	}
	cmd := &ucli.Command{
		Name:      "keys",
		Usage:     "manage your SSH key in project and instance metadata",
		UsageText: "gkessh keys ensure|list|remove|prune [flags] [NODE]",
		// `gkessh help keys list` covers it; a "help" subcommand would
		// crowd the list.
		HideHelpCommand: true,
		Subcommands: []*ucli.Command{
			{
				Name:      "ensure",
				Usage:     "create your key pair if needed and make sure metadata grants it",
				ArgsUsage: "[NODE]",
				Description: "Without NODE the key goes into project metadata (every node). With NODE it goes where that\n" +
					"node reads keys: its own metadata when it sets block-project-ssh-keys, else the project's.\n" +
					"Nothing is written when the key is already there and not about to expire. It does not wait for\n" +
					"nodes to install the key: the next gkessh login or ssh through gkessh proxy does.",
				Action: keysAction(runKeysEnsure),
			},
			{
				Name:      "list",
				Usage:     "list the ssh-keys entries of the project and NODE",
				ArgsUsage: "[NODE]",
				Flags: []ucli.Flag{
					&ucli.BoolFlag{Name: "audit", Usage: "flag permanent, expired, duplicate and project-wide (sudo everywhere) keys"},
					&ucli.BoolFlag{Name: "fail", Usage: "audit, and exit 3 when any line has a problem (to gate CI)"},
					formatFlag("one object per line")},
				Action: keysAction(runKeysList),
			},
			{
				Name:      "remove",
				Usage:     "remove your key (or, with --user, every key of that user) from metadata",
				ArgsUsage: "[NODE]",
				Description: "Without --user, removes your user's lines for your key file's key. With --user U, removes every\n" +
					"line for U. Works on project metadata, or NODE's with NODE (or --scope).",
				Action: keysAction(runKeysRemove),
			},
			{
				Name:      "prune",
				Usage:     "remove your key's expired and superseded lines (--all-expired: everyone's expired lines)",
				ArgsUsage: "[NODE]",
				Description: "Without --all-expired, removes the expired and superseded lines of your user (or --user) for\n" +
					"your key file's key only: under a shared name such as root, other keys' lines are other people's.",
				Flags: []ucli.Flag{
					&ucli.BoolFlag{Name: "all-expired", Usage: "remove every user's expired lines"}},
				Action: keysAction(runKeysPrune),
			},
		},
	}
	// Without it urfave answers an unknown subcommand with "No help topic"
	// and exit 3.
	cmd.Action = func(c *ucli.Context) error {
		if c.NArg() == 0 {
			return ucli.ShowSubcommandHelp(c)
		}
		return usagef("unknown command 'keys %s'%s", c.Args().First(), suggestion(cmd.Subcommands, c.Args().First()))
	}
	return cmd
}

// keysFlagValues reads whichever of the keys flags the subcommand has.
func keysFlagValues(c *ucli.Context) (keysOptions, error) {
	if c.NArg() > 1 {
		return keysOptions{}, usagef("%s takes at most one NODE, got %q", c.Command.FullName(), c.Args().Slice())
	}
	k, err := keyFlagValues(c)
	if err != nil {
		return keysOptions{}, err
	}
	o := keysOptions{
		globalOptions: globals(c),
		keyOptions:    k,
		Node:          c.Args().First(),
		Audit:         c.Bool("audit") || c.Bool("fail"),
		Fail:          c.Bool("fail"),
		AllExpired:    c.Bool("all-expired"),
	}
	if o.Scope == keys.ScopeInstance && o.Node == "" {
		return o, usagef("--scope instance needs a NODE")
	}
	if c.Command.Name == "list" {
		if o.JSON, err = formatJSON(c); err != nil {
			return o, err
		}
	}
	return o, nil
}

// keysTarget builds the client and, with a NODE, fetches the instance.
func keysTarget(ctx context.Context, o keysOptions, d *deps) (*gce.Client, *gce.Instance, error) {
	a, err := newResolver(o.globalOptions, d)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.Compute(ctx)
	if err != nil || o.Node == "" {
		return c, nil, err
	}
	if err := checkNode(o.Node, o.Zone); err != nil {
		return nil, nil, err
	}
	_, inst, err := a.Instance(ctx, o.Node)
	return c, inst, err
}

// scope is --scope, else the NODE's metadata when a NODE is given.
func (o keysOptions) scope() string {
	switch {
	case o.Scope != "":
		return o.Scope
	case o.Node != "":
		return keys.ScopeInstance
	}
	return keys.ScopeProject
}

func runKeysEnsure(ctx context.Context, o keysOptions, d *deps, stdio Stdio) error {
	user, err := userOf(d, o.keyOptions)
	if err != nil {
		return err
	}
	path, err := keyFileOf(d, o.keyOptions)
	if err != nil {
		return err
	}
	var pub ssh.PublicKey
	if o.DryRun {
		kp, err := keys.Load(path) // writes nothing, not even a missing .pub
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stdio.Out, "would create key pair %s and add it for %s to metadata\n", path, user)
			return nil
		}
		if err != nil {
			return badInput(err)
		}
		pub = kp.Public
		kp.Close()
	}
	// keys ensure is a write the user asked for: where it goes (an
	// instance's own metadata, when it ignores the project's) is said
	// without --verbose too.
	a, err := newAccess(ctx, o.globalOptions, o.keyOptions, d, stdio, accessOptions{DryRun: o.DryRun, Logf: d.logger(true)})
	if err != nil {
		return err
	}
	defer a.Close()
	if !o.DryRun {
		kp, err := a.Key()
		if err != nil {
			return err
		}
		pub = kp.Public
	}
	var p *access.Plan
	if o.Node == "" {
		p, err = a.PlanProject(ctx)
	} else if err = checkNode(o.Node, o.Zone); err == nil {
		p, err = a.Plan(ctx, o.Node)
	}
	if err != nil {
		return err
	}
	g, err := a.Grant(ctx, p)
	if err != nil {
		return err
	}
	fp := ssh.FingerprintSHA256(pub)
	if g.Wrote && !o.DryRun {
		forgetStamps(ctx, d, p.Node.Project, stdio.Err, func(s stamp) bool { return s.Key == fp })
	}
	if p.Mode == access.OSLogin {
		switch {
		case o.DryRun:
			fmt.Fprintf(stdio.Out, "OS Login is on: would import your key %s into the OS Login profile of %s\n", fp, p.Account)
		case g.Wrote:
			fmt.Fprintln(stdio.Out, granted(g, p))
		default:
			fmt.Fprintf(stdio.Out, "Your key %s is already in the OS Login profile of %s (user %s), %s.\n", fp, p.Account, printable(p.User), whenExpires(p.Expire))
		}
		return nil
	}
	where := describeScope(g.Scope, g.Item, o.Node)
	switch {
	case !g.Wrote:
		fmt.Fprintf(stdio.Out, "%s's key %s is already in %s\n", user, fp, where)
	case o.DryRun:
		fmt.Fprintf(stdio.Out, "would add to %s: %s\n", where, g.Line)
	default:
		fmt.Fprintf(stdio.Out, "Added %s's key %s to %s%s%s.\n", user, fp, where, expiryNote(keys.ParseLine(g.Line)), replaced(p))
	}
	return nil
}

func describeScope(scope, key, node string) string {
	if scope == keys.ScopeInstance {
		return fmt.Sprintf("instance %s metadata %s", node, key)
	}
	return "project metadata " + key
}

func expiryNote(l keys.Line) string {
	if !l.Expiring() {
		return ", never expiring"
	}
	return ", expiring " + l.ExpireOn.UTC().Format(time.RFC3339)
}

func runKeysRemove(ctx context.Context, o keysOptions, d *deps, stdio Stdio) error {
	user, err := userOf(d, o.keyOptions)
	if err != nil {
		return err
	}
	var pub ssh.PublicKey
	if o.User == "" {
		// Without --user: only this machine's key, so other keys of the
		// same login name (another laptop) stay.
		path, err := keyFileOf(d, o.keyOptions)
		if err != nil {
			return err
		}
		if pub, err = keys.PublicKey(path); err != nil {
			return badInput(err)
		}
		if done, err := removeOSLoginKey(ctx, o, d, stdio, pub); done || err != nil {
			return err
		}
	}
	stale := func(s stamp) bool { return s.User == user || s.Login == user }
	if pub != nil {
		fp := ssh.FingerprintSHA256(pub)
		stale = func(s stamp) bool { return s.Key == fp }
	}
	return removeLines(ctx, o, d, stdio, keys.UserLines(user, pub), stale)
}

// removeOSLoginKey takes this machine's key out of the gcloud account's OS
// Login profile when NODE is under OS Login, where metadata holds no key;
// done reports that NODE was.
func removeOSLoginKey(ctx context.Context, o keysOptions, d *deps, stdio Stdio, pub ssh.PublicKey) (done bool, err error) {
	if o.Node == "" {
		return false, nil
	}
	if err := checkNode(o.Node, o.Zone); err != nil {
		return false, err
	}
	a, err := newAccess(ctx, o.globalOptions, o.keyOptions, d, stdio, accessOptions{})
	if err != nil {
		return false, err
	}
	defer a.Close()
	n, inst, err := a.Instance(ctx, o.Node)
	if err != nil {
		return false, err
	}
	proj, err := a.Project(ctx)
	if err != nil || access.ModeOf(inst, proj) != access.OSLogin {
		return false, err
	}
	account, removed, err := a.Revoke(ctx, pub)
	switch {
	case err != nil:
		return true, err
	case removed && o.DryRun:
		fmt.Fprintf(stdio.Out, "would remove your key %s from the OS Login profile of %s\n", ssh.FingerprintSHA256(pub), account)
	case removed:
		fp := ssh.FingerprintSHA256(pub)
		fmt.Fprintf(stdio.Out, "Removed your key %s from the OS Login profile of %s.\n", fp, account)
		forgetStamps(ctx, d, n.Project, stdio.Err, func(s stamp) bool { return s.Key == fp })
	default:
		fmt.Fprintf(stdio.Out, "Your key is not in the OS Login profile of %s: nothing to remove.\n", account)
	}
	return true, nil
}

func runKeysPrune(ctx context.Context, o keysOptions, d *deps, stdio Stdio) error {
	if o.AllExpired {
		return removeLines(ctx, o, d, stdio, keys.ExpiredLines("", nil, d.now()), nil)
	}
	user, err := userOf(d, o.keyOptions)
	if err != nil {
		return err
	}
	path, err := keyFileOf(d, o.keyOptions)
	if err != nil {
		return err
	}
	pub, err := keys.PublicKey(path)
	if err != nil {
		return badInput(err)
	}
	return removeLines(ctx, o, d, stdio, keys.ExpiredLines(user, pub, d.now()), nil)
}

// removeLines runs metakeys.Remove and says what went. When lines went, the
// stamps stale matches are forgotten (nil: none).
func removeLines(ctx context.Context, o keysOptions, d *deps, stdio Stdio, sel keys.Selector, stale func(stamp) bool) error {
	c, inst, err := keysTarget(ctx, o, d)
	if err != nil {
		return err
	}
	gone, err := metakeys.Remove(ctx, c, inst, sel, metakeys.RemoveOptions{Scope: o.scope(), DryRun: o.DryRun})
	if err != nil {
		return err
	}
	verb := "removed"
	if o.DryRun {
		verb = "would remove"
	}
	if len(gone) == 0 {
		fmt.Fprintf(stdio.Out, "nothing to remove from %s\n", describeScope(o.scope(), keys.MetadataKey, o.Node))
	}
	for _, r := range gone {
		fmt.Fprintf(stdio.Out, "%s from %s: %s\n", verb, describeScope(r.Scope, r.Item, o.Node), summary(r.Line))
	}
	if len(gone) > 0 && !o.DryRun && stale != nil {
		forgetStamps(ctx, d, c.ProjectID, stdio.Err, stale)
	}
	return nil
}

// summary is a line for humans: user, type, fingerprint and expiry, never
// the whole key.
func summary(l keys.Line) string {
	if !l.Valid() {
		return fmt.Sprintf("%q (%v)", truncate(l.Raw, 60), l.Err)
	}
	return fmt.Sprintf("%s %s %s%s", printable(l.User), l.Key.Type(), ssh.FingerprintSHA256(l.Key), expiryNote(l))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// listedKey is one line of 'keys list --format json'.
type listedKey struct {
	Scope       string   `json:"scope"`
	Instance    string   `json:"instance,omitempty"`
	MetadataKey string   `json:"metadataKey"`
	Line        int      `json:"line"`
	User        string   `json:"user"`
	Type        string   `json:"type,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	ExpireOn    string   `json:"expireOn,omitempty"`
	Error       string   `json:"error,omitempty"`
	Problems    []string `json:"problems,omitempty"`
}

func runKeysList(ctx context.Context, o keysOptions, d *deps, stdio Stdio) error {
	c, inst, err := keysTarget(ctx, o, d)
	if err != nil {
		return err
	}
	proj, err := c.Project(ctx)
	if err != nil {
		return err
	}
	entries := metakeys.Entries(proj, inst)
	if o.Audit {
		keys.Audit(entries, d.now())
	}
	listed := make([]listedKey, len(entries))
	for i, e := range entries {
		k := listedKey{Scope: e.Scope, Instance: e.Instance, MetadataKey: e.Item, Line: e.LineNo, User: e.Line.User, Problems: e.Problems}
		if e.Line.Valid() {
			k.Type, k.Fingerprint = e.Line.Key.Type(), ssh.FingerprintSHA256(e.Line.Key)
			if e.Line.Expiring() {
				k.ExpireOn = e.Line.ExpireOn.UTC().Format(time.RFC3339)
			}
		} else {
			k.Error = e.Line.Err.Error()
		}
		listed[i] = k
	}
	if o.JSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(listed); err != nil {
			return err
		}
		return o.verdict(entries)
	}
	notes := listNotes(inst, proj)
	if o.Audit {
		notes = append(notes, sudoEverywhere(entries, d.now())...)
	}
	for _, n := range notes {
		fmt.Fprintf(stdio.Err, "gkessh: %s\n", printable(n))
	}
	if err := writeKeyTable(stdio.Out, listed, o.Audit); err != nil {
		return err
	}
	return o.verdict(entries)
}

// verdict is --fail's exit status: exitProblems when an audited line has a
// problem.
func (o keysOptions) verdict(entries []keys.Entry) error {
	if !o.Fail {
		return nil
	}
	n := 0
	for _, e := range entries {
		if len(e.Problems) > 0 {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return exitError{code: exitProblems, err: fmt.Errorf("audit: %d of %d lines have problems", n, len(entries))}
}

// listNotes are the facts that change what the listed lines mean.
func listNotes(inst *gce.Instance, proj *gce.Project) []string {
	var notes []string
	if access.ModeOf(inst, proj) == access.OSLogin {
		notes = append(notes, access.OSLoginNote)
	}
	if inst != nil && gce.BlocksProjectSSHKeys(inst) {
		notes = append(notes, "instance "+inst.Name+" sets block-project-ssh-keys: the project lines do not apply to it")
	}
	return notes
}

// sudoEverywhere names, in one line, the users whose project-wide keys make
// them root on every node: the audit's headline.
func sudoEverywhere(entries []keys.Entry, now time.Time) []string {
	var users []string
	seen := map[string]bool{}
	for _, e := range entries {
		l := e.Line
		if e.Scope == keys.ScopeProject && l.Valid() && !l.Expired(now) && !seen[l.User] {
			seen[l.User] = true
			users = append(users, l.User)
		}
	}
	if len(users) == 0 {
		return nil
	}
	who := plural(len(users), "user") + " get"
	if len(users) == 1 {
		who += "s"
	}
	return []string{fmt.Sprintf("%s sudo on every node without block-project-ssh-keys through project metadata: %s", who, strings.Join(users, ", "))}
}

// writeKeyTable writes the text table of keys list; with audit, a
// problem column and the command that fixes them. SCOPE names no instance:
// the one NODE on the command line is the only one listed.
func writeKeyTable(w io.Writer, listed []listedKey, audit bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "SCOPE\tUSER\tTYPE\tFINGERPRINT\tEXPIRES"
	if audit {
		// Short enough for 120 columns: no type, a short fingerprint,
		// the expiry's day, one word per problem; --format json has every
		// detail.
		header = "SCOPE\tUSER\tFINGERPRINT\tEXPIRES\tPROBLEMS\tFIX"
	}
	fmt.Fprintln(tw, header)
	for i, k := range listed {
		scope := k.Scope
		if k.MetadataKey != keys.MetadataKey {
			scope += " (" + k.MetadataKey + ")"
		}
		typ, fp, exp := k.Type, k.Fingerprint, k.ExpireOn
		switch {
		case k.Error != "":
			// A line the guest agent skips has no key and no expiry.
			typ, fp, exp = "-", k.Error, "invalid"
		case exp == "":
			exp = "never"
		}
		cells := []string{scope, orDash(k.User), typ, fp, exp}
		if audit {
			labels := make([]string, len(k.Problems))
			for i, p := range k.Problems {
				labels[i] = problemLabel(p)
			}
			if k.ExpireOn != "" {
				exp = k.ExpireOn[:len("2006-01-02")] // the day: --format json has the time
			}
			if k.Error == "" {
				fp = truncate(fp, len("SHA256:")+10)
			} else {
				fp = "-" // its error is in --format json
			}
			cells = []string{scope, orDash(k.User), fp, exp, orDash(strings.Join(slices.Compact(labels), ", ")), orDash(fixOf(listed, i))}
		}
		for i, c := range cells {
			cells[i] = printable(c) // metadata can hold anything
		}
		row := strings.Join(cells, "\t")
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// fixOf is the command that fixes listed[i]'s problems, or "" when no one
// command does: keys prune --all-expired for an expired line; keys remove
// --user U for a line that should go (invalid, permanent, holding a private
// key) when every line of U in that value should go too, since it removes
// them all. Instance lines get --scope instance NODE.
func fixOf(listed []listedKey, i int) string {
	k := listed[i]
	where := ""
	if k.Scope == keys.ScopeInstance {
		where = " --scope instance " + k.Instance
	}
	bad := func(k listedKey) (expired, remove bool) {
		for _, p := range k.Problems {
			switch problemLabel(p) {
			case "expired":
				expired = true
			case "invalid", "permanent", "PRIVATE-KEY":
				remove = true
			}
		}
		return expired, remove
	}
	expired, remove := bad(k)
	if remove && k.User != "" {
		for _, o := range listed {
			if o.Scope == k.Scope && o.Instance == k.Instance && o.MetadataKey == k.MetadataKey && o.User == k.User {
				if e, r := bad(o); !e && !r {
					return ""
				}
			}
		}
		return "gkessh keys remove --user " + k.User + where
	}
	if expired && !remove {
		return "gkessh keys prune --all-expired" + where
	}
	return ""
}

// problemLabels name keys.Audit's problems in a word each, by how its
// messages start; the messages themselves are in --format json.
var problemLabels = []struct{ prefix, label string }{
	{"contains what looks like a private key", "PRIVATE-KEY"},
	{"the guest agent skips", "invalid"},
	{"the guest agent cannot create", "invalid"},
	{"the Go guest agent installs it, but images still on the Python", "python-agent-skips"},
	{"never expires", "permanent"},
	{"expired ", "expired"},
	{"project-wide", "sudo-everywhere"},
	{"same key also grants", "key-shared"},
	{"duplicate", "duplicate"},
}

func problemLabel(p string) string {
	for _, l := range problemLabels {
		if strings.HasPrefix(p, l.prefix) {
			return l.label
		}
	}
	return truncate(p, 24)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
