package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	ossignal "os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Node commands start in a helper process: this executable again, run
// with spawnerEnv set. A fork copies the forking process's file table and
// exec then closes every descriptor in the copy, and the emulator holds
// three listeners per node (sshd and the kubelet's two ports): at 1000
// nodes every command's start cost the emulator ~0.5 ms of CPU for that
// alone, 8% of all the CPU a warm `run --all -- true` took. The helper
// holds a handful.
//
// The two talk over a SOCK_SEQPACKET socket pair: a spawnRequest with the
// command's stdio as SCM_RIGHTS one way; the spawnEvents answering it and
// later saying the process exited the other way. The helper exits, killing
// what it started, once its stdin, a pipe from this process, ends.
const spawnerEnv = "GKESSH_EMULATOR_SPAWNER"

func init() {
	if os.Getenv(spawnerEnv) == "1" {
		os.Exit(serveSpawns(os.Stdin, 3))
	}
}

type spawnRequest struct {
	ID uint64 `json:"id"`
	procSpec
}

// spawnEvent answers request ID (Pid, or Err), or, with ID 0, says
// process Pid exited with Status (or could not be waited for: Err).
type spawnEvent struct {
	ID     uint64 `json:"id,omitempty"`
	Pid    int    `json:"pid,omitempty"`
	Status uint32 `json:"status,omitempty"`
	Err    string `json:"err,omitempty"`
}

// maxSpawnRequest bounds a request: the command line and environment.
const maxSpawnRequest = 256 << 10

var errSpawnerGone = errors.New("emulator: the process helper exited")

// spawner is this process's end of the helper, started on first use.
type spawner struct {
	mu     sync.Mutex
	conn   *net.UnixConn // nil while no helper runs
	next   uint64
	starts map[uint64]chan startResult
	procs  map[int]*nodeProcess // started, not yet exited
}

type startResult struct {
	p   *nodeProcess
	err error
}

var helper spawner

// startProcess starts spec with files as its stdin, stdout and stderr (a
// TTY: the terminal alone).
func startProcess(spec procSpec, files []*os.File) (*nodeProcess, error) {
	return helper.start(spec, files)
}

func (s *spawner) start(spec procSpec, files []*os.File) (*nodeProcess, error) {
	s.mu.Lock()
	if s.conn == nil {
		if err := s.launch(); err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("emulator: starting the process helper: %w", err)
		}
	}
	conn := s.conn
	s.next++
	id := s.next
	done := make(chan startResult, 1)
	s.starts[id] = done
	s.mu.Unlock()

	msg, err := json.Marshal(spawnRequest{ID: id, procSpec: spec})
	if err == nil && len(msg) > maxSpawnRequest {
		err = fmt.Errorf("command and environment of %d bytes", len(msg))
	}
	if err == nil {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		_, _, err = conn.WriteMsgUnix(msg, unix.UnixRights(fds...), nil)
	}
	if err != nil {
		s.mu.Lock()
		_, waiting := s.starts[id]
		delete(s.starts, id)
		s.mu.Unlock()
		if waiting {
			return nil, err
		}
		// The helper went away meanwhile and answered for it.
	}
	r := <-done
	return r.p, r.err
}

// launch starts the helper; s.mu is held.
func (s *spawner) launch() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	theirs := os.NewFile(uintptr(pair[1]), "spawner")
	defer theirs.Close()
	c, err := fileConn(pair[0])
	if err != nil {
		return err
	}
	conn := c.(*net.UnixConn)
	stdin, keep, err := os.Pipe()
	if err != nil {
		conn.Close()
		return err
	}
	defer stdin.Close()
	cmd := exec.Command(exe)
	cmd.Env = []string{spawnerEnv + "=1"}
	cmd.Stdin, cmd.Stderr, cmd.ExtraFiles = stdin, os.Stderr, []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		conn.Close()
		keep.Close()
		return err
	}
	s.conn = conn
	s.starts = map[uint64]chan startResult{}
	s.procs = map[int]*nodeProcess{}
	go s.read(conn, cmd, keep)
	return nil
}

// read takes the helper's events until it exits, then fails what waits on
// it: a start gets an error, a running process is killed and reports
// errSpawnerGone.
func (s *spawner) read(conn *net.UnixConn, cmd *exec.Cmd, keep *os.File) {
	buf := make([]byte, 4<<10)
	for {
		n, _, _, _, err := conn.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			break
		}
		var ev spawnEvent
		if json.Unmarshal(buf[:n], &ev) != nil {
			continue
		}
		s.mu.Lock()
		if done := s.starts[ev.ID]; ev.ID != 0 && done != nil {
			delete(s.starts, ev.ID)
			if ev.Err != "" {
				done <- startResult{err: errors.New(ev.Err)}
			} else {
				p := newNodeProcess(ev.Pid)
				s.procs[ev.Pid] = p
				done <- startResult{p: p}
			}
		} else if p := s.procs[ev.Pid]; ev.ID == 0 && p != nil {
			delete(s.procs, ev.Pid)
			p.status = syscall.WaitStatus(ev.Status)
			if ev.Err != "" {
				p.err = errors.New(ev.Err)
			}
			close(p.exited)
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	for _, done := range s.starts {
		done <- startResult{err: errSpawnerGone}
	}
	for pid, p := range s.procs {
		unix.Kill(-pid, unix.SIGKILL) // left without a parent that reports it
		p.err = errSpawnerGone
		close(p.exited)
	}
	s.conn, s.starts, s.procs = nil, nil, nil
	s.mu.Unlock()
	conn.Close()
	keep.Close()
	cmd.Wait()
}

// serveSpawns is the helper: it starts what each request asks on socket
// sock, answers, and reports each exit, until stdin ends. It returns the
// exit code.
func serveSpawns(stdin *os.File, sock int) int {
	c, err := fileConn(sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "emulator process helper:", err)
		return 1
	}
	conn := c.(*net.UnixConn)
	// ^C in the emulator's terminal reaches this process too; the emulator
	// decides when commands end. Caught, not ignored, so that the commands
	// still get the default disposition.
	ossignal.Notify(make(chan os.Signal, 1), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)

	var mu sync.Mutex // serializes sends and guards live
	live := map[int]bool{}
	send := func(ev spawnEvent) {
		msg, _ := json.Marshal(ev)
		conn.Write(msg)
	}
	go func() {
		io.Copy(io.Discard, stdin)
		mu.Lock() // no more starts
		for pid := range live {
			unix.Kill(-pid, unix.SIGKILL)
		}
		os.Exit(0)
	}()
	buf := make([]byte, maxSpawnRequest)
	oob := make([]byte, unix.CmsgSpace(3*4))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return 0
		}
		files := receivedFiles(oob[:oobn])
		var req spawnRequest
		err = json.Unmarshal(buf[:n], &req)
		if err == nil && len(files) != 3 && !(req.TTY && len(files) == 1) {
			err = fmt.Errorf("%d files for a command", len(files))
		}
		mu.Lock()
		var pid int
		if err == nil {
			pid, err = startLocal(req.procSpec, files, func(st syscall.WaitStatus, err error) {
				mu.Lock()
				defer mu.Unlock()
				delete(live, pid)
				ev := spawnEvent{Pid: pid, Status: uint32(st)}
				if err != nil {
					ev.Err = err.Error()
				}
				send(ev)
			})
		}
		ev := spawnEvent{ID: req.ID, Pid: pid}
		if err != nil {
			ev.Err = err.Error()
		} else {
			live[pid] = true
		}
		send(ev)
		mu.Unlock()
		for _, f := range files {
			f.Close()
		}
	}
}

// receivedFiles are the descriptors passed with a message.
func receivedFiles(oob []byte) []*os.File {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "stdio"))
		}
	}
	return files
}
