package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// TestNodeCommandsStartInHelper checks that a session's command is forked
// by the helper, which holds a handful of descriptors, not by this process
// and its listeners, and that what the helper does for a session matches
// what os/exec did: the client's signal, a background child holding the
// output, the client going away, and the helper itself dying.
func TestNodeCommandsStartInHelper(t *testing.T) {
	for range 200 { // as the listeners of 67 nodes
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
	}
	d, name, signer, c := builtinLogin(t)

	out, _, _ := run(t, c, "ls /proc/$PPID/fd | wc -l", "")
	if n, err := strconv.Atoi(strings.TrimSpace(out)); err != nil || n > 32 {
		t.Errorf("the command's parent holds %q descriptors, want a handful", out)
	}

	t.Run("signal", func(t *testing.T) {
		sess, lines := start(t, c, "echo ready; exec sleep 30")
		<-lines
		if err := sess.Signal(ssh.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var ee *ssh.ExitError
		if err := sess.Wait(); !errors.As(err, &ee) || ee.Signal() != "TERM" {
			t.Errorf("after SIGTERM the command ended with %v, want signal TERM", err)
		}
	})

	t.Run("background child holds the output", func(t *testing.T) {
		begin := time.Now()
		out, _, status := run(t, c, "sleep 30 & echo started", "")
		if took := time.Since(begin); out != "started\n" || status != 0 || took < waitDelay || took > waitDelay+10*time.Second {
			t.Errorf("got %q, status %d after %v; want started, 0 after about %v", out, status, took, waitDelay)
		}
	})

	t.Run("client gone", func(t *testing.T) {
		c2, err := dialNode(d, name, signer)
		if err != nil {
			t.Fatal(err)
		}
		_, lines := start(t, c2, "echo $$; exec sleep 30")
		pid, _ := strconv.Atoi(<-lines)
		c2.Close()
		waitGone(t, pid)
	})

	t.Run("helper dies", func(t *testing.T) {
		sess, lines := start(t, c, "echo $PPID $$; exec sleep 30")
		f := strings.Fields(<-lines)
		helperPid, _ := strconv.Atoi(f[0])
		pid, _ := strconv.Atoi(f[1])
		if helperPid == os.Getpid() {
			t.Fatal("the command's parent is this process, not the helper")
		}
		if err := unix.Kill(helperPid, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var missing *ssh.ExitMissingError
		if err := sess.Wait(); !errors.As(err, &missing) {
			t.Errorf("the session ended with %v, want no exit status", err)
		}
		waitGone(t, pid)
		out, _, status := run(t, c, "echo $PPID", "")
		if status != 0 || strings.TrimSpace(out) == f[0] || out == "" {
			t.Errorf("after the helper died: %q, status %d; want a new helper's pid, 0", out, status)
		}
	})
}

// start starts cmd and returns its session and stdout's lines.
func start(t *testing.T, c *ssh.Client, cmd string) (*ssh.Session, <-chan string) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	stdout, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(cmd); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return sess, lines
}

// waitGone waits for process pid to be gone: reaped, or a zombie that
// whoever inherited it has yet to reap.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	if pid <= 1 {
		t.Fatalf("no pid: %d", pid)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// pid (comm) state ...: comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(stat[i+1:], []byte(" Z")) {
			return
		}
	}
	t.Errorf("process %d still runs", pid)
}

// TestHelperRefusesBadRequests sends the helper requests it must refuse:
// the wrong number of descriptors for the command's stdio, and a message
// that is not a request. Each gets an error, nothing starts, and the
// helper goes on serving.
func TestHelperRefusesBadRequests(t *testing.T) {
	var s spawner
	t.Cleanup(func() {
		s.mu.Lock()
		conn := s.conn
		s.mu.Unlock()
		if conn != nil {
			conn.Close() // the helper exits once its socket ends
		}
	})
	var files []*os.File
	for range 2 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		files = append(files, r, w)
	}
	// Each run would leave its mark in dir: none may.
	dir := t.TempDir()
	spec := procSpec{Path: "/bin/sh", Args: []string{"sh", "-c", "touch ran"}, Dir: dir}
	for _, tt := range []struct {
		name  string
		files []*os.File
		want  string
	}{
		{"two files", files[:2], "2 files for a command"},
		{"four files", files[:4], "4 files for a command"},
		{"none", nil, "0 files for a command"},
		{"one file, no terminal", files[:1], "1 files for a command"},
	} {
		p, err := s.start(spec, tt.files)
		if err == nil || !strings.Contains(err.Error(), tt.want) || p != nil {
			t.Errorf("%s: got %v, %v; want an error saying %q", tt.name, p, err, tt.want)
		}
	}
	if _, err := os.Stat(dir + "/ran"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused request ran its command (%v)", err)
	}

	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if _, err := conn.Write([]byte("not a request")); err != nil {
		t.Fatal(err)
	}
	spec.Args = []string{"sh", "-c", "exit 7"}
	p, err := s.start(spec, files[:3])
	if err != nil {
		t.Fatalf("after the refusals the helper started nothing: %v", err)
	}
	s.mu.Lock()
	same := s.conn == conn
	s.mu.Unlock()
	if !same {
		t.Error("the helper died on a bad request: a new one started the command")
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the command did not end")
	}
	if p.err != nil || p.status.ExitStatus() != 7 {
		t.Errorf("the command ended with %v, status %d; want 7", p.err, p.status.ExitStatus())
	}
}
