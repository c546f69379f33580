package gce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/internal/ctxtoken"
)

// APIError is a failed Compute API call or operation: the HTTP status and
// what Google's error body says about it.
type APIError struct {
	Code    int      // HTTP status
	Message string   // error.message, or the start of a body that is not Google's JSON
	Reasons []string // error.errors[].reason, or an operation's error codes
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if len(e.Reasons) > 0 {
		s += " (" + strings.Join(e.Reasons, ", ") + ")"
	}
	return s
}

// DefaultTimeout bounds each request, from sending it to the end of the
// reply, when Client.Timeout is 0: Compute answers in well under a second,
// so a minute without a whole reply is an API or a proxy on the way that
// accepted the connection and stalled.
const DefaultTimeout = 60 * time.Second

// waitTimeout bounds operations.wait, which Google holds for up to about
// two minutes before it answers that the operation is still running.
const waitTimeout = 150 * time.Second

// StalledError is a request that got no whole reply within the client's
// bound.
type StalledError struct {
	Method string
	URL    string // scheme, host and path: the endpoint, without the query
	After  time.Duration
}

func (e *StalledError) Error() string {
	return fmt.Sprintf("no reply from %s within %v (%s %s)", hostOf(e.URL), e.After, e.Method, e.URL)
}

func hostOf(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		return u.Host
	}
	return rawURL
}

// errStalled is the cause of a request's context ending at its bound.
var errStalled = errors.New("gce: the request's time bound passed")

// maxErrorBody bounds how much of a failed reply is read: Google's error
// bodies are small, and a proxy's HTML page is only worth its start.
const maxErrorBody = 64 << 10

// do calls the API: method on path under c.Endpoint with query, body (when
// not nil) sent as JSON, and the reply decoded into out. A reply that is not
// 2xx becomes an *APIError. A 401 tells a token source that can drop the
// refused token (auth.Source) to do so, and the call is made once more
// with a fresh token.
// Each request is bounded by c.Timeout (see DefaultTimeout); one that
// stalls fails with a *StalledError.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.doAt(ctx, method, c.Endpoint+path, query, body, out)
}

// doAt is do with a full URL, for the Google APIs beside Compute.
func (c *Client) doAt(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.doWithin(ctx, c.timeout(), method, path, query, body, out)
}

// timeout is the bound of one request.
func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// doWithin is doAt with the bound of each request.
func (c *Client) doWithin(ctx context.Context, limit time.Duration, method, path string, query url.Values, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
	}
	refused, limited := false, 0
	for {
		tok, err := ctxtoken.Token(ctx, c.TokenSource)
		if err != nil {
			return fmt.Errorf("get an access token: %w", err)
		}
		err = c.doOnce(ctx, limit, tok, method, path, query, b, out)
		inv, ok := c.TokenSource.(invalidator)
		var ae *APIError
		if !refused && ok && errors.As(err, &ae) && ae.Code == http.StatusUnauthorized {
			refused = true
			inv.Invalidate(tok)
			continue
		}
		// A call refused for the project's rate did nothing: wait and
		// make it again, as Google asks, however many calls wait at once.
		bo := c.backoff()
		if IsRateLimited(err) && limited < bo.Attempts {
			wait := bo.Delay(limited)
			if c.limited != nil {
				c.limited.Add(1)
				c.limitedWait.Add(int64(wait))
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
			limited++
			continue
		}
		return err
	}
}

// Backoff says how a call refused for the project's rate of API calls is
// made again: after a wait that doubles from Base up to Max, with jitter,
// at most Attempts more times.
type Backoff struct {
	Base, Max time.Duration
	Attempts  int
}

// DefaultBackoff is the truncated exponential backoff Google advises for
// rate quotas: from about 1 s, doubling up to 32 s; 8 tries wait about 1 to
// 2 minutes in all.
var DefaultBackoff = Backoff{Base: time.Second, Max: 32 * time.Second, Attempts: 8}

// Delay is the wait before retry n (0 first): half of min(Base·2ⁿ, Max)
// plus a random part up to the other half, so that calls refused together
// do not come back together.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Max
	if n < 30 && b.Base<<n < b.Max {
		d = b.Base << n
	}
	return d/2 + rand.N(d/2+1)
}

func (c *Client) backoff() Backoff {
	if c.Backoff.Attempts > 0 {
		return c.Backoff
	}
	return DefaultBackoff
}

// IsRateLimited reports whether err is a refusal for the project's rate of
// calls: 429 RESOURCE_EXHAUSTED, or the 403 rateLimitExceeded Compute
// answered before.
func IsRateLimited(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.Code == http.StatusTooManyRequests ||
		ae.Code == http.StatusForbidden && (slices.Contains(ae.Reasons, "rateLimitExceeded") || slices.Contains(ae.Reasons, "userRateLimitExceeded"))
}

// RateLimited returns how many calls the client made again after a
// refusal for the project's rate, and the waits before them added up
// (calls waiting at once count each): for a summary to say so.
func (c *Client) RateLimited() (calls int64, waited time.Duration) {
	if c.limited == nil {
		return 0, 0
	}
	return c.limited.Load(), time.Duration(c.limitedWait.Load())
}

// invalidator is a token source that can drop a token a server refused.
type invalidator interface{ Invalidate(*oauth2.Token) }

func (c *Client) doOnce(parent context.Context, limit time.Duration, tok *oauth2.Token, method, path string, query url.Values, body []byte, out any) (err error) {
	ctx, cancel := context.WithTimeoutCause(parent, limit, errStalled)
	defer cancel()
	defer func() {
		if err != nil && parent.Err() == nil && errors.Is(context.Cause(ctx), errStalled) {
			err = &StalledError{Method: method, URL: path, After: limit}
		}
	}()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	q := url.Values{"prettyPrint": {"false"}} // compact replies, as the official client asks
	maps.Copy(q, query)
	req, err := http.NewRequestWithContext(ctx, method, path+"?"+q.Encode(), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	tok.SetAuthHeader(req)
	// Google gzips an answer only for a User-Agent that names gzip (its
	// APIs' performance tips); Go's transport asks for gzip and unpacks
	// it. A listing of 1000 GKE nodes is some 50 MB of JSON.
	req.Header.Set("User-Agent", c.UserAgent+" (gzip)")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err // a *url.Error, which names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readAPIError(resp)
	}
	// encoding/json/v2 (this module mirrors Go 1.27's) decodes a listing
	// three times as fast as v1 does: 1000 GKE nodes are some 50 MB of
	// JSON. As leniently as v1 about the data.
	if err := jsonv2.UnmarshalRead(resp.Body, out, jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)); err != nil {
		return fmt.Errorf("decode the reply to %s %s: %w", method, path, err)
	}
	return nil
}

// readAPIError reads a failed reply. Google's body is
// {"error":{"code":412,"message":"…","errors":[{"reason":"conditionNotMet",…}]}};
// anything else (a proxy's page, an empty body) is kept as text.
func readAPIError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // a short read still says something
	e := &APIError{Code: resp.StatusCode}
	var g struct {
		Error struct {
			Message string `json:"message"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &g) == nil && g.Error.Message != "" {
		e.Message = g.Error.Message
		for _, it := range g.Error.Errors {
			if it.Reason != "" {
				e.Reasons = append(e.Reasons, it.Reason)
			}
		}
		return e
	}
	text := strings.TrimSpace(string(b))
	if len(text) > 200 {
		text = strings.ToValidUTF8(text[:200], "") + "…"
	}
	e.Message = text
	return e
}

// projectPath is the API path of the client's project followed by elems,
// each escaped as one path segment; "", "." and ".." are refused, as they
// would not stay one.
func (c *Client) projectPath(elems ...string) (string, error) {
	p := "projects/" + url.PathEscape(c.ProjectID)
	if err := segment(c.ProjectID); err != nil {
		return "", err
	}
	for _, e := range elems {
		if err := segment(e); err != nil {
			return "", err
		}
		p += "/" + url.PathEscape(e)
	}
	return p, nil
}

// instancePath is projectPath for an instance (and elems under it), with
// the zone and name checked against GCE's grammar.
func (c *Client) instancePath(zone, name string, elems ...string) (string, error) {
	if err := CheckZone(zone); err != nil {
		return "", err
	}
	if err := CheckName(name); err != nil {
		return "", err
	}
	return c.projectPath(append([]string{"zones", zone, "instances", name}, elems...)...)
}
