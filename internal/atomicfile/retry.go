package atomicfile

import (
	"math/rand/v2"
	"time"
)

// retryFor bounds how long a rename refused for a moment is tried again;
// Go's own cmd/go (internal/robustio) allows the same 2 s.
const retryFor = 2 * time.Second

// retry runs op until it succeeds, fails for good, or retryFor has passed.
// On Windows a rename over a file another process holds open (ssh.exe
// reading its config, an antivirus scan, the search indexer) is refused
// for a moment with ERROR_ACCESS_DENIED or ERROR_SHARING_VIOLATION;
// elsewhere transient is always false and op runs once.
func retry(op func() error) error {
	return retryWith(op, transient, time.Sleep)
}

// retryWith is retry with the error test and the sleep as parameters, so
// the loop is tested on every OS. Waits start at 1 ms and grow by a random
// part of themselves, as robustio's do, so two retrying writers drift apart.
func retryWith(op func() error, transient func(error) bool, sleep func(time.Duration)) error {
	var waited time.Duration
	next := time.Millisecond
	for {
		err := op()
		if err == nil || !transient(err) || waited+next > retryFor {
			return err
		}
		sleep(next)
		waited += next
		next += rand.N(next)
	}
}
