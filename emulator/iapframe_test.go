//go:build unix

package emulator

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex reads bytes written as "00 07 ...".
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRelayFrameBytes: the relay's frames are byte for byte those of
// gcloud's unit tests (tests/unit/api_lib/compute/iap_tunnel_websocket_utils_test.py,
// quoted in ../shared/reference/iap-protocol.md), and it reads a client's
// DATA and ACK from those bytes.
func TestRelayFrameBytes(t *testing.T) {
	sent := []struct {
		name string
		got  []byte
		want string
	}{
		{"ACK(1)", appendAckFrame(nil, 1), "00 07 00 00 00 00 00 00 00 01"},
		{"ACK(65534)", appendAckFrame(nil, 65534), "00 07 00 00 00 00 00 00 ff fe"},
		{"DATA", append(appendDataHeader(nil, 6), "\x99abcde"...), "00 04 00 00 00 06 99 61 62 63 64 65"},
		{"CONNECT_SUCCESS_SID", appendSIDFrame(nil, "z"), "00 01 00 00 00 01 7a"},
		{"RECONNECT_SUCCESS_ACK(3029)", appendReconnectAckFrame(nil, 3029), "00 02 00 00 00 00 00 00 0b d5"},
	}
	for _, tt := range sent {
		if want := unhex(t, tt.want); !bytes.Equal(tt.got, want) {
			t.Errorf("%s: % x, want % x", tt.name, tt.got, want)
		}
	}
	f, err := parseClientFrame(unhex(t, "00 04 00 00 00 06 99 61 62 63 64 65"))
	if err != nil || f.tag != tagData || string(f.payload) != "\x99abcde" {
		t.Errorf("DATA read as %+v, %v", f, err)
	}
	f, err = parseClientFrame(unhex(t, "00 07 00 00 00 00 00 00 ff fe"))
	if err != nil || f.tag != tagAck || f.ack != 65534 {
		t.Errorf("ACK read as %+v, %v", f, err)
	}
}

// TestRelayRefusesClientFrames: what no client sends is an error, so the
// relay closes the tunnel (4013) rather than guess; an unknown tag is
// skipped, as the protocol asks.
func TestRelayRefusesClientFrames(t *testing.T) {
	data := func(n int, extra int) []byte {
		b := binary.BigEndian.AppendUint32([]byte{0, 4}, uint32(n))
		return append(b, make([]byte, n+extra)...)
	}
	bad := map[string][]byte{
		"empty message":       {},
		"tag only":            {0},
		"empty DATA":          data(0, 0),
		"DATA over 16384":     data(16385, 0),
		"DATA cut short":      data(10, -1),
		"bytes after DATA":    data(10, 1),
		"ACK cut short":       unhex(t, "00 07 00 00 00 00 00 00 01"),
		"bytes after ACK":     unhex(t, "00 07 00 00 00 00 00 00 00 01 00"),
		"CONNECT_SUCCESS_SID": unhex(t, "00 01 00 00 00 01 7a"),
		"RECONNECT_ACK":       unhex(t, "00 02 00 00 00 00 00 00 0b d5"),
	}
	for name, msg := range bad {
		if f, err := parseClientFrame(msg); err == nil {
			t.Errorf("%s: read as %+v", name, f)
		}
	}
	if f, err := parseClientFrame(data(16384, 0)); err != nil || len(f.payload) != 16384 {
		t.Errorf("DATA of 16384 bytes: %v", err)
	}
	if f, err := parseClientFrame([]byte{0, 9, 1, 2, 3}); err != nil || f.tag != 9 {
		t.Errorf("unknown tag: %+v, %v", f, err)
	}
}

// FuzzRelayClientFrame: whatever a client sends, the parser neither
// panics nor accepts a DATA frame outside 1..16384 bytes, and what it
// accepts is exactly the message.
func FuzzRelayClientFrame(f *testing.F) {
	f.Add([]byte{0, 4, 0, 0, 0, 1, 'x'})
	f.Add([]byte{0, 7, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 10, 0, 0, 0x0f, 0xa1, 0, 0, 0, 1, 'x'})
	f.Add([]byte{0, 4, 0, 0, 0x40, 0x01})
	f.Fuzz(func(t *testing.T, msg []byte) {
		fr, err := parseClientFrame(msg)
		if err != nil {
			return
		}
		switch fr.tag {
		case tagData:
			if len(fr.payload) == 0 || len(fr.payload) > relayMaxData {
				t.Fatalf("accepted DATA of %d bytes", len(fr.payload))
			}
			if !bytes.Equal(append(appendDataHeader(nil, len(fr.payload)), fr.payload...), msg) {
				t.Fatalf("DATA frame is not the whole message: % x", msg)
			}
		case tagAck:
			if !bytes.Equal(appendAckFrame(nil, fr.ack), msg) {
				t.Fatalf("ACK frame is not the whole message: % x", msg)
			}
		case tagConnectSuccessSID, tagReconnectSuccessACK:
			t.Fatalf("accepted the relay's own frame %#04x from a client", fr.tag)
		}
	})
}
