//go:build unix

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// usageVar names, in a measured command's environment, the file this test
// binary writes the command's resource use to when started as its parent.
const usageVar = "GKESSH_E2E_USAGE_FILE"

// usage is what a measured command's process tree used: the largest
// resident set of its processes, CPU time (user and system), and its wall
// time from start to exit, without its parent's own start-up.
type usage struct {
	rss       float64 // MiB
	cpu, wall time.Duration
}

// measureUsage makes cmd, before it starts, run as the child of a fresh
// process (this test binary, started again), which reports what cmd
// used when it exits: a process this one starts by vfork and exec is
// charged this process's own peak RSS (Linux keeps the old address
// space's high-water mark at exec), hundreds of MiB after the copy
// benchmarks, whatever the command itself used. The returned function
// reads the report after cmd.Wait.
func measureUsage(tb testing.TB, cmd *exec.Cmd) func() (usage, error) {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	report := filepath.Join(tb.TempDir(), "usage")
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env[:len(env):len(env)], usageVar+"="+report)
	cmd.Args = append([]string{self, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = self
	return func() (usage, error) {
		b, err := os.ReadFile(report)
		if err != nil {
			return usage{}, fmt.Errorf("no usage report: %w", err)
		}
		var kib, cpu, wall int64
		if _, err := fmt.Sscan(string(b), &kib, &cpu, &wall); err != nil {
			return usage{}, fmt.Errorf("usage report %q: %w", b, err)
		}
		return usage{rss: float64(kib) / 1024, cpu: time.Duration(cpu), wall: time.Duration(wall)}, nil
	}
}

// runMeasured is this binary as measureUsage's parent: it runs args with its
// own stdio and environment (less usageVar), writes the child's peak RSS
// in KiB, and its CPU and wall time in nanoseconds, to report, and returns
// the child's exit status.
func runMeasured(report string, args []string) int {
	os.Unsetenv(usageVar)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "measured:", err)
		return 127
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if err := os.WriteFile(report, fmt.Appendf(nil, "%d %d %d\n", ru.Maxrss, cpu.Nanoseconds(), wall.Nanoseconds()), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "measured:", err)
		return 127
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

// TestMeasuredUsage: a command measured through a fresh parent reports
// its own peak RSS, not this process's: with 256 MiB held here, `true`
// measures what its parent held when it started it (~16 MiB; started from
// here it measured 273 MiB), and a command that holds 64 MiB at least
// that. Its exit status comes through.
func TestMeasuredUsage(t *testing.T) {
	held := make([]byte, 256<<20)
	for i := range held {
		held[i] = 1 // resident, so that vfork+exec charges it
	}
	cases := []struct {
		name     string
		args     []string
		min, max float64 // MiB
		code     int
	}{
		{"true", []string{"true"}, 0, 64, 0},
		{"64 MiB", []string{"sh", "-c", `x=$(head -c 64M /dev/zero | tr "\\0" a); true`}, 64, 400, 0},
		{"exit 3", []string{"sh", "-c", "exit 3"}, 0, 64, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(tc.args[0], tc.args[1:]...)
			if p, err := exec.LookPath(tc.args[0]); err == nil {
				cmd.Path = p
			}
			read := measureUsage(t, cmd)
			err := cmd.Run()
			if got := cmd.ProcessState.ExitCode(); got != tc.code {
				t.Errorf("exit %d (%v), want %d", got, err, tc.code)
			}
			u, err := read()
			if err != nil {
				t.Fatal(err)
			}
			if u.rss < tc.min || u.rss > tc.max {
				t.Errorf("peak RSS %.1f MiB, want %.0f to %.0f (this process holds 256 MiB)", u.rss, tc.min, tc.max)
			}
		})
	}
	held[len(held)-1] = 0 // held until here
}

// TestEmulatorCPUCountsHelper checks that the emulator's CPU figure counts
// its child process (the helper that starts node commands) and not the
// helper's own children: a shell whose child spins counts, a shell whose
// grandchild spins does not.
func TestEmulatorCPUCountsHelper(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc to read CPU times from")
	}
	cases := []struct {
		name   string
		script string // run by sh, which stands for the emulator
		counts bool
	}{
		{"child spins", `sh -c 'while :; do :; done' & wait`, true},
		{"grandchild spins", `sh -c 'sh -c "while :; do :; done"; :' & wait`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", tc.script)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			// Until the spinner has run 200 ms, however loaded the machine.
			var own, got time.Duration
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				// The figure under test last: the spinner's CPU it counts is
				// then at least what treeCPU saw, however long this goroutine
				// waits between the reads.
				own, _ = procCPU(cmd.Process.Pid)
				tree := treeCPU(cmd.Process.Pid)
				got, _ = emulatorCPU(cmd.Process.Pid)
				if tree-own >= 200*time.Millisecond {
					break
				}
			}
			if counted := got-own >= 150*time.Millisecond; counted != tc.counts {
				t.Errorf("emulatorCPU %v, the shell's own %v: counted the spinner %v, want %v", got, own, counted, tc.counts)
			}
		})
	}
}

// treeCPU is the CPU time of pid and every process below it.
func treeCPU(pid int) time.Duration {
	total, _ := procCPU(pid)
	for _, c := range childPids(pid) {
		total += treeCPU(c)
	}
	return total
}
