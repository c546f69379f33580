package fleet

// Each node in flight holds its tunnel's socket; the API connections
// (up to 64 idle), the known_hosts and key files, stdio and the runtime's
// own are shared. filesReserved keeps room for those; filesPerNode is a
// margin over the one socket (measured: 715 open at -P 500).
const (
	filesReserved = 128
	filesPerNode  = 2
)

// ParallelLimit is the most nodes a run works on at once without running
// out of file descriptors, and the open-file limit it follows (the soft
// RLIMIT_NOFILE, which Go raises to one under the hard one at start); 0, 0 where the
// system sets none that matters (Windows). Run lowers Config.Parallel to
// it.
func ParallelLimit() (parallel int, files uint64) {
	files, ok := openFileLimit()
	if !ok {
		return 0, 0
	}
	return parallelFor(files), files
}

func parallelFor(files uint64) int {
	if files < filesReserved+filesPerNode {
		return 1
	}
	return int(min((files-filesReserved)/filesPerNode, 1<<20))
}
