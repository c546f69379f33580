//go:build unix

package pty

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOpenSizeAndEcho(t *testing.T) {
	master, tty, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer tty.Close()

	for _, size := range [][2]int{{24, 80}, {50, 132}} {
		if err := SetSize(master, size[0], size[1]); err != nil {
			t.Fatal(err)
		}
		ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ)
		if err != nil {
			t.Fatal(err)
		}
		if int(ws.Row) != size[0] || int(ws.Col) != size[1] {
			t.Fatalf("terminal end sees %dx%d, want %dx%d", ws.Col, ws.Row, size[1], size[0])
		}
	}

	// What the program on the terminal end writes reaches the controller,
	// with the line discipline's newline translation.
	if _, err := tty.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(master).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimRight(line, "\r\n") != "hello" || !strings.HasSuffix(line, "\r\n") {
		t.Fatalf("controller read %q, want \"hello\\r\\n\"", line)
	}
}
