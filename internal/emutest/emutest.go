//go:build unix

// Package emutest serves a gce-emulator for tests in other packages, the
// way httptest serves a handler.
package emutest

import (
	"net/http/httptest"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// Serve starts an emulator with cfg behind a loopback HTTP server and
// returns it with the server's base URL (http://127.0.0.1:PORT). When the
// test ends both stop, and the emulator must close cleanly.
func Serve(tb testing.TB, cfg emulator.Config) (*emulator.Server, string) {
	tb.Helper()
	srv, err := emulator.New(cfg)
	if err != nil {
		tb.Fatalf("new emulator: %v", err)
	}
	hs := httptest.NewServer(srv)
	tb.Cleanup(func() {
		hs.Close()
		if err := srv.Close(); err != nil {
			tb.Errorf("close emulator: %v", err)
		}
	})
	return srv, hs.URL
}
