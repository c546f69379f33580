package sshclient

import (
	"bytes"
	"io"
	"testing"
	"unicode/utf16"
)

// TestConsoleReader: what a console gives as UTF-16, in the reads it comes
// in, is passed on as UTF-8 byte for byte, Ctrl-Z (0x1A) and Ctrl-C
// included, a surrogate pair split between reads joined, a lone surrogate
// replaced; a read error ends it. Go's console reader (os.File.Read on a
// Windows console) drops a Ctrl-Z at the start of a read and stops at one
// elsewhere, so a suspend typed in a session never reaches the node.
func TestConsoleReader(t *testing.T) {
	emoji := utf16.Encode([]rune("😀")) // a surrogate pair
	for _, tt := range []struct {
		name  string
		reads [][]uint16
		want  string
	}{
		{"ctrl-z alone", [][]uint16{{0x1a}}, "\x1a"},
		{"ctrl-z in a line", [][]uint16{utf16.Encode([]rune("vi x\x1abg\r"))}, "vi x\x1abg\r"},
		{"ctrl-c and escapes", [][]uint16{utf16.Encode([]rune("\x03\x1b[A"))}, "\x03\x1b[A"},
		{"non-ASCII", [][]uint16{utf16.Encode([]rune("é名"))}, "é名"},
		{"pair in one read", [][]uint16{emoji}, "😀"},
		{"pair split between reads", [][]uint16{{'a', emoji[0]}, {emoji[1], 'b'}}, "a😀b"},
		{"pair split, high half alone", [][]uint16{{emoji[0]}, {emoji[1]}}, "😀"},
		{"lone low half", [][]uint16{{0xdc00, 'x'}}, "\uFFFDx"},
		{"high half then not its pair", [][]uint16{{emoji[0]}, {'x'}}, "\uFFFDx"},
		{"an empty read", [][]uint16{{}, {'x'}}, "x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reads := tt.reads
			c := &consoleReader{read: func(units []uint16) (int, error) {
				if len(reads) == 0 {
					return 0, io.EOF
				}
				n := copy(units, reads[0])
				reads = reads[1:]
				return n, nil
			}}
			var got bytes.Buffer
			buf := make([]byte, 3) // short reads: pending bytes carried over
			for {
				n, err := c.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if got.String() != tt.want {
				t.Errorf("read %q, want %q", got.String(), tt.want)
			}
		})
	}
}
