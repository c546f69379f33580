package gce

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// stallingListener accepts connections and never answers; it keeps them
// open until the test ends.
func stallingListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	})
	return ln.Addr().String()
}

func stallClient(t *testing.T, endpoint string, bound time.Duration) *Client {
	t.Helper()
	c, err := New(context.Background(), "p", endpoint, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"}))
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = bound
	return c
}

// TestStalledAPI: an API that accepts and never answers, or stops in the
// middle of a reply, fails the call at the client's bound with a
// *StalledError naming the endpoint; it used to hang as long as the
// caller's context allowed.
func TestStalledAPI(t *testing.T) {
	const bound = 300 * time.Millisecond
	halfReply := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"name": "p", "commonInstanceMetadata": {"items": [`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer halfReply.Close()
	for _, tc := range []struct{ name, endpoint string }{
		{"accepts and stalls", "http://" + stallingListener(t) + "/compute/v1/"},
		{"stalls mid-reply", halfReply.URL + "/compute/v1/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := stallClient(t, tc.endpoint, bound)
			start := time.Now()
			_, err := c.Project(context.Background())
			took := time.Since(start)
			var se *StalledError
			if !errors.As(err, &se) {
				t.Fatalf("err %v, want a *StalledError", err)
			}
			host := strings.TrimPrefix(strings.SplitN(tc.endpoint, "/compute", 2)[0], "http://")
			if !strings.Contains(err.Error(), "no reply from "+host+" within 300ms") {
				t.Errorf("error %q does not name the endpoint %s and the bound", err, host)
			}
			if took < bound || took > bound+30*time.Second {
				t.Errorf("gave up after %v, bound %v", took, bound)
			}
		})
	}
	// The caller's own cancel is not a stall.
	c := stallClient(t, "http://"+stallingListener(t)+"/compute/v1/", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Project(ctx)
	var se *StalledError
	if errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller's deadline: %v", err)
	}
}

// TestOperationWaitOutlastsBound: operations.wait, which Google holds for
// up to two minutes, is not cut at the bound of an ordinary request.
func TestOperationWaitOutlastsBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/wait") {
			time.Sleep(400 * time.Millisecond)
		}
		io.WriteString(w, `{"name": "op1", "status": "DONE"}`)
	}))
	defer srv.Close()
	c := stallClient(t, srv.URL+"/compute/v1/", 100*time.Millisecond)
	if err := c.wait(context.Background(), "us-west1-a", &operation{Name: "op1", Status: "RUNNING"}); err != nil {
		t.Errorf("wait: %v", err)
	}
}
