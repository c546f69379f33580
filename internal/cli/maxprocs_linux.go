package cli

import (
	"runtime"

	"github.com/gkessh/gkessh/internal/gcloud"
)

// oneP is GOMAXPROCS 1, held while a proxy copies.
var oneP = &setting{to: 1, set: runtime.GOMAXPROCS}

// oneProc runs the proxy's copying on one P, unless GOMAXPROCS is set in
// env, and returns what puts the old value back. One stream needs one
// thread running Go at a time; more make the scheduler spin between
// hand-offs, and on a small machine that CPU is taken from ssh itself.
// Measured on Linux only, where the stdio pipes go through the network
// poller.
func oneProc(env gcloud.LookupEnv) (restore func()) {
	if v, _ := env("GOMAXPROCS"); v != "" {
		return func() {}
	}
	return oneP.hold()
}
