#!/usr/bin/env bash
# make demo: start gce-emulator, log in to a GKE-looking node through the
# emulated IAP tunnel with a fresh HOME (so a key is created, upserted and
# waited for), run a few commands, stop the emulator. Needs only Go: the
# emulator's nodes run its builtin SSH server.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/gkessh ] && [ -x bin/gce-emulator ] || { echo "demo: run 'make demo' (it builds bin/ first)" >&2; exit 1; }
work=$(mktemp -d)
GCE_EMULATOR_PID=""
cleanup() {
	# --stop waits until the emulator has gone, its files with it.
	if [ -n "$GCE_EMULATOR_PID" ]; then ./bin/gce-emulator --stop >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
echo "# Start gce-emulator: a Compute API, an IAP relay and 3 GKE-looking nodes, and point gkessh at it."
echo "\$ eval \"\$(gce-emulator --background --project demo-project --nodes 3)\""
eval "$(./bin/gce-emulator --background --project demo-project --nodes 3)"
export HOME="$work/home" # a fresh HOME: no key yet, nothing known
mkdir -p "$HOME"
node=gke-cluster-default-pool-3e89aeb0-b47k

export PATH="$PWD/bin:$PATH"
# step shows a command the way one would type it, then runs it.
step() {
	local shown="" a
	for a in "$@"; do
		case "$a" in *[[:space:]]*) a="'$a'" ;; esac
		shown+=" $a"
	done
	echo
	echo "\$$shown"
	"$@"
}
step gkessh "$node" -- id
# The key is in place and the host key pinned: straight in this time.
step gkessh "$node" -- uname -sn
# The remote exit status is gkessh's.
status=0
step gkessh "$node" -- sh -c 'exit 7' || status=$?
echo "(exit status $status)"
