//go:build unix

package emulator

import (
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// procSpec is a node command to start: an exec, a shell or the sftp
// subsystem of a builtin sshd session.
type procSpec struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir,omitempty"`
	// TTY: the process gets one terminal as stdin, stdout and stderr, and
	// it becomes its controlling terminal in a session of its own.
	// Otherwise the process leads a process group of its own. Either way
	// signals for the command go to the group, -pid.
	TTY bool `json:"tty,omitempty"`
}

// nodeProcess is a started node command.
type nodeProcess struct {
	pid    int
	exited chan struct{} // closed once status or err is set
	status syscall.WaitStatus
	err    error // set when the process could not be waited for
}

func newNodeProcess(pid int) *nodeProcess {
	return &nodeProcess{pid: pid, exited: make(chan struct{})}
}

// signal sends sig to the command's process group while the command runs.
func (p *nodeProcess) signal(sig syscall.Signal) error {
	select {
	case <-p.exited:
		return os.ErrProcessDone
	default:
		return unix.Kill(-p.pid, sig)
	}
}

// startLocal starts spec in this process with files as its stdin, stdout
// and stderr (one file for a TTY), and calls exited from a goroutine of its
// own once the process is gone.
func startLocal(spec procSpec, files []*os.File, exited func(syscall.WaitStatus, error)) (pid int, err error) {
	sys := &syscall.SysProcAttr{Setpgid: true}
	if spec.TTY {
		sys = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		files = []*os.File{files[0], files[0], files[0]}
	}
	p, err := os.StartProcess(spec.Path, spec.Args, &os.ProcAttr{Dir: spec.Dir, Env: lastWins(spec.Env), Files: files, Sys: sys})
	if err != nil {
		return 0, err
	}
	go func() {
		st, err := p.Wait()
		if err != nil {
			exited(0, err)
			return
		}
		exited(st.Sys().(syscall.WaitStatus), nil)
	}()
	return p.Pid, nil
}

// lastWins drops the earlier of two entries for one variable, as os/exec
// does: a client's env request overrides the login environment.
func lastWins(env []string) []string {
	out := make([]string, 0, len(env))
	seen := make(map[string]bool, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		k, _, _ := strings.Cut(env[i], "=")
		if !seen[k] {
			seen[k] = true
			out = append(out, env[i])
		}
	}
	slices.Reverse(out)
	return out
}
