package iap

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// The byte strings come from gcloud's unit tests for its relay codec.
func TestFrameGolden(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"ack 1", AppendAck(nil, 1), "0007 0000000000000001"},
		{"ack 65534", AppendAck(nil, 65534), "0007 000000000000fffe"},
		{"data", AppendData(nil, []byte("\x99abcde")), "0004 00000006 996162636465"},
		{"connect sid", AppendConnectSuccess(nil, "z"), "0001 00000001 7a"},
		{"reconnect ack 3029", AppendReconnectSuccess(nil, 3029), "0002 0000000000000bd5"},
		{"long close", AppendLongClose(nil, 4033, "x"), "000a 00000fc1 00000001 78"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := hex.DecodeString(strings.ReplaceAll(tt.want, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tt.got, want) {
				t.Fatalf("encoded % x, want % x", tt.got, want)
			}
			f, err := ParseFrame(tt.got)
			if err != nil {
				t.Fatalf("ParseFrame: %v", err)
			}
			if back := encode(f); !bytes.Equal(back, want) {
				t.Fatalf("round trip % x, want % x", back, want)
			}
		})
	}
}

func TestParseFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"short ack", []byte{0, 7, 0, 0}},
		{"data length past end", []byte{0, 4, 0, 0, 0, 9, 1}},
		{"data over the receive bound", append(AppendDataHeader(nil, MaxRecvDataLen+1), make([]byte, MaxRecvDataLen+1)...)},
		{"sid too long", []byte{0, 1, 0xff, 0xff, 0xff, 0xff}},
		{"short close", []byte{0, 0xa, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := ParseFrame(tt.msg); err == nil {
				t.Fatalf("ParseFrame(% x) = %+v, want error", tt.msg, f)
			}
		})
	}
}

func TestParseFrameUnknownTag(t *testing.T) {
	f, err := ParseFrame([]byte{0, 5, 1, 2, 3})
	if err != nil || f.Tag != 5 {
		t.Fatalf("got %+v, %v; want tag 5 and no error", f, err)
	}
}

// encode re-encodes a parsed frame, for round-trip checks.
func encode(f Frame) []byte {
	switch f.Tag {
	case TagConnectSuccessSID:
		return AppendConnectSuccess(nil, f.SID)
	case TagReconnectSuccessACK:
		return AppendReconnectSuccess(nil, f.Ack)
	case TagData:
		return AppendData(nil, f.Data)
	case TagAck:
		return AppendAck(nil, f.Ack)
	case TagLongClose:
		return AppendLongClose(nil, f.Code, f.Reason)
	}
	return nil
}

func FuzzParseFrame(f *testing.F) {
	f.Add(AppendAck(nil, 1))
	f.Add(AppendData(nil, []byte("hello")))
	f.Add(AppendConnectSuccess(nil, "sid"))
	f.Add(AppendReconnectSuccess(nil, 3029))
	f.Add(AppendLongClose(nil, 4003, "failed to connect to backend"))
	f.Add([]byte{0, 9})
	f.Fuzz(func(t *testing.T, msg []byte) {
		fr, err := ParseFrame(msg)
		if err != nil {
			return
		}
		// Relays may send more than MaxDataLen (gcloud reads it); only
		// MaxRecvDataLen bounds what is accepted.
		if len(fr.Data) > MaxRecvDataLen {
			t.Fatalf("data of %d bytes accepted", len(fr.Data))
		}
		back := encode(fr)
		if back == nil {
			return
		}
		again, err := ParseFrame(back)
		if err != nil {
			t.Fatalf("re-encoded frame does not parse: %v", err)
		}
		if !bytes.Equal(encode(again), back) {
			t.Fatalf("round trip changed frame: % x vs % x", encode(again), back)
		}
	})
}
