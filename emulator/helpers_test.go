//go:build unix

package emulator

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// newTestServer starts an emulator with cfg served over loopback HTTP; both
// stop when the test ends.
func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	if cfg.ControlSecret == "" {
		cfg.ControlSecret = testControlSecret // what ctl sends
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("new emulator: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	return srv, hs
}

// computeClient is the official compute/v1 client pointed at the emulator;
// an empty token sends no Authorization header.
func computeClient(t *testing.T, hs *httptest.Server, token string) *compute.Service {
	t.Helper()
	opts := []option.ClientOption{option.WithEndpoint(hs.URL + "/compute/v1/")}
	if token == "" {
		opts = append(opts, option.WithoutAuthentication())
	} else {
		opts = append(opts, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})))
	}
	svc, err := compute.NewService(context.Background(), opts...)
	if err != nil {
		t.Fatalf("compute client: %v", err)
	}
	return svc
}

// wantAPIError checks that err is a Google API error with this code and reason.
func wantAPIError(t *testing.T, err error, code int, reason string) *googleapi.Error {
	t.Helper()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("got error %v, want a googleapi.Error %d %s", err, code, reason)
	}
	if gerr.Code != code || len(gerr.Errors) == 0 || gerr.Errors[0].Reason != reason {
		t.Fatalf("got %d %+v, want %d with reason %s", gerr.Code, gerr.Errors, code, reason)
	}
	return gerr
}

// fakeSSHD stands in for a node's SSH server and reports every key set the
// guest agent installs.
type fakeSSHD struct {
	hostKeys  []ssh.PublicKey
	installed chan map[string][]ssh.PublicKey

	mu      sync.Mutex
	running bool
}

// useFakeSSHD replaces the node's SSH server (closing the real one) with a
// fake publishing hostKeys.
func useFakeSSHD(t *testing.T, n *Node, hostKeys ...ssh.PublicKey) *fakeSSHD {
	t.Helper()
	f := &fakeSSHD{hostKeys: hostKeys, installed: make(chan map[string][]ssh.PublicKey, 64), running: true}
	n.mu.Lock()
	old := n.sshd
	n.sshd = f
	n.mu.Unlock()
	if old != nil {
		if err := old.Close(); err != nil {
			t.Fatalf("close node %s sshd: %v", n.Name, err)
		}
	}
	return f
}

func (f *fakeSSHD) Addr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return ""
	}
	return "127.0.0.1:1"
}

func (f *fakeSSHD) HostKeys() []ssh.PublicKey { return f.hostKeys }

func (f *fakeSSHD) SetAuthorized(m map[string][]ssh.PublicKey) error {
	select {
	case f.installed <- m:
	default: // a test that does not read installs must not stall the agent
	}
	return nil
}

func (f *fakeSSHD) setRunning(on bool) error {
	f.mu.Lock()
	f.running = on
	f.mu.Unlock()
	return nil
}

func (f *fakeSSHD) Start() error { return f.setRunning(true) }
func (f *fakeSSHD) Stop() error  { return f.setRunning(false) }
func (f *fakeSSHD) Close() error { return f.setRunning(false) }

// nextInstall waits for the guest agent's next install on f.
func (f *fakeSSHD) nextInstall(t *testing.T, within time.Duration) map[string][]ssh.PublicKey {
	t.Helper()
	select {
	case m := <-f.installed:
		return m
	case <-time.After(within):
		t.Fatalf("guest agent installed nothing within %v", within)
		return nil
	}
}
