package cli

import (
	"strings"
)

// fileRef is one path of a copy as gcloud compute scp reads it
// (ssh.FileReference.FromPath): a local path, or [USER@]NODE:PATH on a
// node. ":PATH", which gcloud would take for a local file, is PATH on every
// selected node.
type fileRef struct {
	User, Node, Path string
	Remote           bool
}

// parseFileRef splits arg at its first colon when what comes before reads
// as [USER@]NODE, as gcloud's Remote._REMOTE_REGEX has it:
// ^(?:([^:@]+)@)?([^.:/\\@][^:/\\@]*)$, so "./a:b", "/tmp/a:b" and
// "a@b@c:d" are local. On Windows a drive letter ("C:\x") is local, as
// gcloud's os.path.splitdrive makes it.
func parseFileRef(arg string, windows bool) fileRef {
	local := fileRef{Path: arg}
	if windows && len(arg) >= 2 && arg[1] == ':' && ('a' <= arg[0] && arg[0] <= 'z' || 'A' <= arg[0] && arg[0] <= 'Z') {
		return local
	}
	head, path, found := strings.Cut(arg, ":")
	if !found {
		return local
	}
	if head == "" {
		return fileRef{Path: path, Remote: true}
	}
	user, host, hasUser := strings.Cut(head, "@")
	if !hasUser {
		user, host = "", head
	}
	if hasUser && user == "" || host == "" || host[0] == '.' || strings.ContainsAny(host, `/\@`) {
		return local
	}
	return fileRef{User: user, Node: host, Path: path, Remote: true}
}

// copySpec is what a copy's arguments ask for, checked as gcloud's
// SCPCommand.Verify checks them: local sources to one node, or sources on
// one node to a local destination.
type copySpec struct {
	Push    bool
	User    string // from USER@, "" when not given
	Node    string // "": every selected node (":PATH")
	Sources []string
	Dest    string
}

// parseCopyArgs reads SRC... DST.
func parseCopyArgs(args []string, windows bool) (copySpec, error) {
	if len(args) < 2 {
		return copySpec{}, usagef("give SRC... DST, one side on a node: NODE:PATH (or :PATH with a selection)")
	}
	refs := make([]fileRef, len(args))
	for i, a := range args {
		refs[i] = parseFileRef(a, windows)
	}
	dst, srcs := refs[len(refs)-1], refs[:len(refs)-1]
	spec := copySpec{Push: dst.Remote}
	if dst.Remote {
		for _, s := range srcs {
			if s.Remote {
				return spec, usagef("%s: copy from a node to this machine, or from here to a node, not between nodes", printable(args[len(args)-1]))
			}
			spec.Sources = append(spec.Sources, s.Path)
		}
		spec.User, spec.Node, spec.Dest = dst.User, dst.Node, dst.Path
		return spec, nil
	}
	first := srcs[0]
	if !first.Remote {
		return spec, usagef("neither %s nor %s is on a node: write NODE:PATH (or :PATH with a selection)", printable(args[0]), printable(dst.Path))
	}
	for i, s := range srcs {
		if !s.Remote {
			return spec, usagef("%s: with the destination here, every source is on the node (NODE:PATH)", printable(args[i]))
		}
		if s.User != first.User || s.Node != first.Node {
			return spec, usagef("%s and %s: every source is on the same node, as the same user", printable(args[0]), printable(args[i]))
		}
		spec.Sources = append(spec.Sources, s.Path)
	}
	spec.User, spec.Node, spec.Dest = first.User, first.Node, dst.Path
	return spec, nil
}
