//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The background emulator hands its env lines to the command that started
// it over a pipe, never through a file: a file name in a shared temporary
// directory can be created by another local user in the moment it is free,
// and the lines are eval'd. These variables tell the child which
// descriptor is the pipe and which private directory to remove at exit.
const (
	readyFDVar  = "GCE_EMULATOR_READY_FD"
	runDirVar   = "GCE_EMULATOR_RUN_DIR"
	runDirStart = "gce-emulator-run-"
	readyWait   = 30 * time.Second
)

// startBackground runs this command again without --background, in a
// session of its own (no terminal hang-up reaches it), with its output in
// a log file in a new private directory, waits until it sends its env
// lines on a pipe, and prints them with its pid and log file: what eval
// needs. The emulator removes that directory, log included, when it stops.
func startBackground() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var args []string
	for _, a := range os.Args[1:] {
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); name != "background" {
			args = append(args, a)
		}
	}
	// MkdirTemp makes a new directory, 0700, or fails: no one else can
	// have made it or put anything in it.
	dir, err := os.MkdirTemp("", runDirStart)
	if err != nil {
		return err
	}
	logName := filepath.Join(dir, logBase)
	logFile, err := os.OpenFile(logName, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	defer logFile.Close()
	r, w, err := os.Pipe()
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	cmd.Env = append(os.Environ(), readyFDVar+"=3", runDirVar+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close() // the child holds the write end now: EOF comes when it closes it or exits
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	r.SetReadDeadline(time.Now().Add(readyWait))
	env, err := io.ReadAll(r)
	if len(env) > 0 && env[len(env)-1] == '\n' && err == nil {
		fmt.Print(string(env))
		return nil
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		cmd.Process.Kill()
		<-exited
		os.RemoveAll(dir)
		return fmt.Errorf("the emulator was not ready after %v:\n%s", readyWait, readLog(logFile))
	}
	// It closed the pipe without its lines: it is stopping.
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		err = <-exited
	}
	os.RemoveAll(dir)
	return fmt.Errorf("the emulator stopped before it was ready (%v):\n%s", err, readLog(logFile))
}

// readLog reads what the emulator wrote to its log, through the descriptor
// they share: the emulator removes the file's name when it stops.
func readLog(f *os.File) []byte {
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	return b
}

// backgroundChild returns, in an emulator started by startBackground, the
// pipe to send the env lines on and the private directory to remove at
// exit; else nil and "". It clears the variables, so nothing the emulator
// starts inherits them, and keeps the pipe from the processes it starts.
func backgroundChild() (ready *os.File, runDir string) {
	fd, dir := os.Getenv(readyFDVar), os.Getenv(runDirVar)
	os.Unsetenv(readyFDVar)
	os.Unsetenv(runDirVar)
	if fd != "3" {
		return nil, ""
	}
	syscall.CloseOnExec(3)
	// Remove only what startBackground made: a directory of ours, by name.
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || !strings.HasPrefix(filepath.Base(dir), runDirStart) || !ownedByMe(fi) {
		dir = ""
	}
	return os.NewFile(3, "ready"), dir
}

// logBase is the log's name in the directory startBackground makes.
const logBase = "log"

// logVar is the line naming the log when startBackground started this
// emulator (runDir set), for the printed lines and the --env-file alike.
func logVar(runDir string) []envVar {
	if runDir == "" {
		return nil
	}
	return []envVar{{"GCE_EMULATOR_LOG", filepath.Join(runDir, logBase)}}
}

// ownedByMe reports whether fi's owner is this process's user.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
