//go:build unix

package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// quota is a token bucket: rate tokens a second, at most a second's worth
// (at least one) saved up. It meters the Compute API's calls and the
// relay's new websockets.
type quota struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
	rate   float64 // the rate the bucket was filled at, to start over when it changes
}

// allow takes a token for a call at now; rate 0 allows every call.
func (q *quota) allow(rate float64, now time.Time) bool {
	if rate <= 0 {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	burst := max(rate, 1)
	if q.rate != rate || q.last.IsZero() {
		q.rate, q.tokens, q.last = rate, burst, now
	}
	q.tokens = min(burst, q.tokens+now.Sub(q.last).Seconds()*rate)
	q.last = now
	if q.tokens < 1 {
		return false
	}
	q.tokens--
	return true
}

// writeRateLimited answers a call over the project's rate quota as Google
// does: 429, status RESOURCE_EXHAUSTED, the quota named in the message,
// reason rateLimitExceeded (domain usageLimits) and an ErrorInfo detail.
// The quota's names follow Compute Engine's per-project rate quotas;
// which one a real refusal names depends on the method.
func (s *Server) writeRateLimited(w http.ResponseWriter, rate float64) {
	s.mu.Lock()
	number := s.project.ID
	s.mu.Unlock()
	msg := fmt.Sprintf("Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service "+
		"'compute.googleapis.com' for consumer 'project_number:%d'.", number)
	writeError(w, googleError{
		Code:    http.StatusTooManyRequests,
		Message: msg,
		Errors:  []errorItem{{Message: msg, Domain: "usageLimits", Reason: "rateLimitExceeded"}},
		Status:  "RESOURCE_EXHAUSTED",
		Details: []any{newErrorInfo("RATE_LIMIT_EXCEEDED", map[string]string{
			"service":           "compute.googleapis.com",
			"consumer":          fmt.Sprintf("projects/%d", number),
			"quota_metric":      "compute.googleapis.com/default",
			"quota_limit":       "defaultPerMinutePerProject",
			"quota_limit_value": strconv.Itoa(int(rate * 60)),
		})},
	})
}
