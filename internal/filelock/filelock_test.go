package filelock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A child started with helperEnv=PATH holds the lock on PATH, says
// "locked", and keeps it until it is killed.
const helperEnv = "FILELOCK_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		release, err := Lock(context.Background(), path)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		defer release()
		fmt.Println("locked")
		for {
			time.Sleep(time.Hour) // until killed
		}
	}
	os.Exit(m.Run())
}

// busy reports whether path's lock is held by someone else: Lock gives up
// after a while. A wrong "free" answer is impossible; a wrong "busy" one
// needs a 200 ms stall, and only fails the test.
func busy(t *testing.T, path string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	release, err := Lock(ctx, path)
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	release()
	return false
}

func TestLock(t *testing.T) {
	tests := []struct {
		name string
		hold func(t *testing.T, path string) (release func())
	}{
		{"same process", func(t *testing.T, path string) func() {
			release, err := Lock(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return release
		}},
		{"other process, released by its exit", func(t *testing.T, path string) func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+path)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if line != "locked\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("helper said %q, %v", line, err)
			}
			return func() {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			if busy(t, path) {
				t.Fatal("a fresh lock is busy")
			}
			release := tt.hold(t, path)
			if !busy(t, path) {
				release()
				t.Fatal("a held lock was taken again")
			}
			release()
			// The next waiter gets the lock once it is let go.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			next, err := Lock(ctx, path)
			if err != nil {
				t.Fatalf("after release: %v", err)
			}
			next()
		})
	}
}

func TestLockCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	release, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Lock(ctx, path)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock after cancel: %v, want context.Canceled", err)
	}
}

func TestLockBadPath(t *testing.T) {
	_, err := Lock(context.Background(), filepath.Join(t.TempDir(), "missing", "x.lock"))
	if err == nil {
		t.Fatal("Lock in a missing directory succeeded")
	}
}
