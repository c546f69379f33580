//go:build gkessh_testhooks

package tunnel

import (
	"os"
	"time"
)

// Test builds only (internal/testbin builds with the gkessh_testhooks tag):
// GKESSH_TEST_ACK_TIMEOUT replaces DefaultAckTimeout, so that end-to-end
// tests of a silent or lazy relay need not wait out 30 s. A user's build
// does not read it.
func init() {
	if d, err := time.ParseDuration(os.Getenv("GKESSH_TEST_ACK_TIMEOUT")); err == nil && d > 0 {
		defaultAckTimeout = d
	}
}
