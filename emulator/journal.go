//go:build unix

package emulator

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
)

// The journal keeps the Google API requests the emulator received, as
// received: method, path, query and body. A test that runs gcloud and
// gkessh for the same action compares what each sent from it,
// not only the state their writes leave, which different requests can
// reach alike. The token endpoint's requests (assertions, refresh tokens),
// the relay's websockets and the control API are not kept.

// Request is one API request the emulator received.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query,omitempty"` // raw, as sent
	Body   string `json:"body,omitempty"`  // the first journalBody bytes
}

const (
	journalSize = 4096     // requests kept, the newest
	journalBody = 64 << 10 // bytes of a body kept
)

type journal struct {
	mu   sync.Mutex
	reqs []Request
}

// record keeps r, and gives r a body that reads as the original did.
func (j *journal) record(r *http.Request) {
	p := r.URL.Path
	if p == "/token" || strings.HasPrefix(p, "/control/") || strings.HasPrefix(p, "/v4/") {
		return
	}
	rec := Request{Method: r.Method, Path: p, Query: r.URL.RawQuery}
	if r.Body != nil && r.Body != http.NoBody {
		head, _ := io.ReadAll(io.LimitReader(r.Body, journalBody))
		rec.Body = string(head)
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.reqs) == journalSize {
		j.reqs = append(j.reqs[:0], j.reqs[1:]...)
	}
	j.reqs = append(j.reqs, rec)
}

// Requests returns the API requests received since the start or the last
// ResetRequests, oldest first (at most the newest 4096).
func (s *Server) Requests() []Request {
	s.journal.mu.Lock()
	defer s.journal.mu.Unlock()
	return append([]Request{}, s.journal.reqs...)
}

// ResetRequests empties the journal of requests.
func (s *Server) ResetRequests() {
	s.journal.mu.Lock()
	defer s.journal.mu.Unlock()
	s.journal.reqs = nil
}
