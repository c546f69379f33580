package cli

import "sync"

// setting is a process-wide Go runtime setting that a command changes for
// as long as it runs (run's GOGC, the proxy's GOMAXPROCS). Main may run
// side by side with itself, so holds are counted: the first sets to, the
// last to end puts back what the first found. Releasing in any other
// order would leave the process changed, or undo a hold still running.
type setting struct {
	to  int
	set func(int) int // sets a value, returns the one before

	mu    sync.Mutex
	holds int
	found int
}

// hold sets s to s.to until release is called.
func (s *setting) hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds == 0 {
		s.found = s.set(s.to)
	}
	s.holds++
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.holds--; s.holds == 0 {
			s.set(s.found)
		}
	})
}
