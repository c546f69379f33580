#!/usr/bin/env bash
# make demo: start gce-emulator, log in to a GKE-looking node through the
# emulated IAP tunnel with a fresh HOME, run a command, stop the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill "$emu" 2>/dev/null; wait "$emu" 2>/dev/null; rm -rf "$work"' EXIT
./bin/gce-emulator --project demo-project --nodes 3 --env-file "$work/env" >"$work/emulator.log" 2>&1 &
emu=$!
for _ in $(seq 100); do [ -s "$work/env" ] && break; sleep 0.1; done
[ -s "$work/env" ] || { cat "$work/emulator.log"; exit 1; }
# shellcheck disable=SC1091
. "$work/env"
export HOME="$work/home"
mkdir -p "$HOME"
node=gke-cluster-default-pool-3e89aeb0-b47k
echo "\$ gkessh $node -- id"
./bin/gkessh "$node" -- id
