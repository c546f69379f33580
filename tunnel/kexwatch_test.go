package tunnel

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
)

// packet frames an unencrypted SSH binary packet with message type msg, a
// payload of n more bytes and 4 bytes of padding.
func packet(msg byte, n int) []byte {
	body := append([]byte{4, msg}, make([]byte, n+4)...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestKexWatch(t *testing.T) {
	ident := []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	kexinit, ecdhInit := packet(20, 1500), packet(30, 1220)
	tests := []struct {
		name       string
		stream     []byte
		incomplete bool
	}{
		{"nothing sent", nil, true},
		{"identification only", ident, true},
		{"host key refused after the server's reply", join(ident, kexinit, ecdhInit), true},
		{"cut inside a packet", join(ident, kexinit, ecdhInit[:7]), true},
		{"host key accepted", join(ident, kexinit, ecdhInit, packet(21, 0), []byte("ciphertext")), false},
		{"NEWKEYS cut after its type byte", join(ident, kexinit, packet(21, 0)[:6]), false},
		{"not SSH: HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		{"not SSH: endless first line", []byte(strings.Repeat("x", maxIdentLine+1)), false},
		{"first line too long", join([]byte(strings.Repeat("x", maxIdentLine)), []byte("\n"), packet(20, 0)), false},
		{"tiny packet_length", join(ident, []byte{0, 0, 0, 1, 0, 0}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, byte by byte, and in 7-byte pieces: reads split anywhere.
			for _, size := range []int{len(tt.stream) + 1, 1, 7} {
				var k kexWatch
				for p := tt.stream; len(p) > 0; {
					n := min(size, len(p))
					k.feed(p[:n])
					p = p[n:]
				}
				if got := k.kexIncomplete(); got != tt.incomplete {
					t.Errorf("pieces of %d: kexIncomplete = %v, want %v", size, got, tt.incomplete)
				}
			}
		})
	}
}

// TestKexWatchReceived: what goes to the client counts only after the
// client's NEWKEYS, and not at all when it never sent one.
func TestKexWatchReceived(t *testing.T) {
	var k kexWatch
	w := countedWriter{io.Discard, &k}
	w.Write(make([]byte, 1000)) // the server's key exchange
	k.feed([]byte("SSH-2.0-x\r\n"))
	k.feed(packet(30, 100))
	if got := k.received(); got != 0 {
		t.Fatalf("before NEWKEYS: received %d, want 0", got)
	}
	k.feed(packet(21, 0))
	w.Write(make([]byte, 132))
	w.Write(make([]byte, 20))
	if got := k.received(); got != 152 {
		t.Fatalf("received %d after NEWKEYS, want 152", got)
	}
}

// FuzzKexWatch: however the stream is split into reads, the watch reaches
// the same state as when fed it whole.
func FuzzKexWatch(f *testing.F) {
	ident := []byte("SSH-2.0-x\r\n")
	f.Add(append(append(ident, packet(20, 30)...), packet(21, 0)...), uint8(3))
	f.Add(append(ident, packet(30, 5)...), uint8(1))
	f.Add([]byte("GET / HTTP/1.1\r\n"), uint8(16))
	f.Fuzz(func(t *testing.T, stream []byte, size uint8) {
		var whole, pieces kexWatch
		whole.feed(stream)
		step := int(size)%64 + 1
		for p := stream; len(p) > 0; {
			n := min(step, len(p))
			pieces.feed(p[:n])
			p = p[n:]
		}
		if whole.done != pieces.done || whole.newKeys != pieces.newKeys {
			t.Fatalf("whole: done %v newKeys %v; in pieces of %d: done %v newKeys %v", whole.done, whole.newKeys, step, pieces.done, pieces.newKeys)
		}
		if whole.newKeys && !bytes.Contains(stream, []byte{msgNewKeys}) {
			t.Fatal("NEWKEYS seen in a stream without byte 21")
		}
	})
}
