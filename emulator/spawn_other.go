//go:build unix && !linux

package emulator

import (
	"os"
	"syscall"
)

// startProcess starts spec with files as its stdin, stdout and stderr (a
// TTY: the terminal alone). Here the emulator forks commands itself;
// spawn_linux.go says why Linux uses a helper.
func startProcess(spec procSpec, files []*os.File) (*nodeProcess, error) {
	var p *nodeProcess
	started := make(chan struct{})
	pid, err := startLocal(spec, files, func(st syscall.WaitStatus, err error) {
		<-started
		p.status, p.err = st, err
		close(p.exited)
	})
	if err != nil {
		return nil, err
	}
	p = newNodeProcess(pid)
	close(started)
	return p, nil
}
