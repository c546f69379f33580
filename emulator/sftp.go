//go:build unix

package emulator

import (
	"context"
	"os"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// The builtin node serves the sftp subsystem (gkessh cp, scp, sftp) with
// OpenSSH's sftp-server when the host has it: the program real nodes run,
// so gkessh's SFTP client is judged by an independent server. Elsewhere
// (macOS without it in a known place, a minimal container) pkg/sftp's
// server answers in-process, so nodes always speak SFTP.

// inProcessSFTP reports whether req asks for the sftp subsystem on a node
// without OpenSSH's sftp-server.
func (s *session) inProcessSFTP(req *ssh.Request) bool {
	var m execRequest
	return req.Type == "subsystem" && s.sftpServer == "" && ssh.Unmarshal(req.Payload, &m) == nil && m.Command == "sftp"
}

// startSFTP returns the function that serves SFTP on the session's
// channel, from the login's home directory, until the client ends it or
// ctx (the connection) does; it then reports exit status 0, or 1 after a
// protocol error, and closes the channel.
func (s *session) startSFTP(ctx context.Context, wg *sync.WaitGroup) func() {
	s.sftp = true
	var opts []sftp.ServerOption
	if home, err := os.UserHomeDir(); err == nil {
		opts = append(opts, sftp.WithServerWorkingDirectory(home))
	}
	return func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := context.AfterFunc(ctx, func() { s.ch.Close() })
			defer stop()
			srv, err := sftp.NewServer(s.ch, opts...)
			if err == nil {
				err = srv.Serve() // nil at the client's EOF
			}
			status := uint32(0)
			if err != nil {
				s.logf("sshd: sftp: %v", err)
				status = 1
			}
			s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: status}))
			s.ch.CloseWrite()
			s.ch.Close()
		}()
	}
}
