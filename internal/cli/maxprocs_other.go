//go:build !linux

package cli

import "github.com/gkessh/gkessh/internal/gcloud"

// oneProc leaves GOMAXPROCS alone: one P was measured on Linux only. On
// Windows every pipe read is a blocking system call, and with one P the
// other goroutines could wait for sysmon to take it back.
func oneProc(gcloud.LookupEnv) (restore func()) { return func() {} }
