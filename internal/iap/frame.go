package iap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Frame tags of the IAP relay v4 protocol. Every relay message is one binary
// websocket message: a big-endian u16 tag followed by a tag-specific body.
const (
	TagConnectSuccessSID   uint16 = 0x0001 // u32 len, SID
	TagReconnectSuccessACK uint16 = 0x0002 // u64 bytes the server holds
	TagData                uint16 = 0x0004 // u32 len (1..MaxDataLen), payload
	TagAck                 uint16 = 0x0007 // u64 cumulative bytes received
	TagLongClose           uint16 = 0x000A // u32 code, u32 len, reason
)

// MaxDataLen is the largest DATA payload either side may send.
const MaxDataLen = 16384

// MaxRecvDataLen is the largest DATA payload accepted. The protocol says
// 16384 and gkessh never sends more, but gcloud reads larger payloads, so
// a relay that sends them is tolerated up to this bound.
const MaxRecvDataLen = 64 << 10

// DataHeaderLen is the size of a DATA frame's header: tag and length.
const DataHeaderLen = 2 + 4

// MaxFrameLen is the largest relay message: a full DATA frame.
const MaxFrameLen = DataHeaderLen + MaxDataLen

// maxSIDLen bounds the session id a hostile relay can make us keep.
const maxSIDLen = 1024

// Frame is one decoded relay message. Which fields are set depends on Tag.
// Data aliases the message it was parsed from.
type Frame struct {
	Tag    uint16
	SID    string // TagConnectSuccessSID
	Ack    uint64 // TagReconnectSuccessACK, TagAck
	Data   []byte // TagData
	Code   uint32 // TagLongClose
	Reason string // TagLongClose
}

// KnownTag reports whether tag is one of the protocol's frames; readers
// skip the others, as the protocol requires.
func KnownTag(tag uint16) bool {
	switch tag {
	case TagConnectSuccessSID, TagReconnectSuccessACK, TagData, TagAck, TagLongClose:
		return true
	}
	return false
}

// ErrShortFrame reports a relay message that ends before its body does.
var ErrShortFrame = errors.New("truncated frame")

// ParseFrame decodes one relay message. Unknown tags are returned with only
// Tag set, so callers can ignore them as the protocol requires. Bytes after a
// complete frame are ignored, as gcloud does.
func ParseFrame(msg []byte) (Frame, error) {
	if len(msg) < 2 {
		return Frame{}, ErrShortFrame
	}
	f := Frame{Tag: binary.BigEndian.Uint16(msg)}
	body := msg[2:]
	switch f.Tag {
	case TagConnectSuccessSID:
		b, err := lenPrefixed(body, maxSIDLen)
		if err != nil {
			return Frame{}, fmt.Errorf("connect-success frame: %w", err)
		}
		f.SID = string(b)
	case TagReconnectSuccessACK, TagAck:
		if len(body) < 8 {
			return Frame{}, ErrShortFrame
		}
		f.Ack = binary.BigEndian.Uint64(body)
	case TagData:
		// An empty payload is pointless but harmless, as gcloud reads it.
		b, err := lenPrefixed(body, MaxRecvDataLen)
		if err != nil {
			return Frame{}, fmt.Errorf("data frame: %w", err)
		}
		f.Data = b
	case TagLongClose:
		if len(body) < 4 {
			return Frame{}, ErrShortFrame
		}
		f.Code = binary.BigEndian.Uint32(body)
		b, err := lenPrefixed(body[4:], MaxDataLen)
		if err != nil {
			return Frame{}, fmt.Errorf("close frame: %w", err)
		}
		f.Reason = string(b)
	}
	return f, nil
}

func lenPrefixed(b []byte, max int) ([]byte, error) {
	if len(b) < 4 {
		return nil, ErrShortFrame
	}
	n := binary.BigEndian.Uint32(b)
	if n > uint32(max) {
		return nil, fmt.Errorf("length %d over limit %d", n, max)
	}
	if uint32(len(b)-4) < n {
		return nil, ErrShortFrame
	}
	return b[4 : 4+n], nil
}

// AppendData appends a DATA frame carrying p, which must hold 1..MaxDataLen bytes.
func AppendData(dst, p []byte) []byte {
	return append(AppendDataHeader(dst, len(p)), p...)
}

// AppendDataHeader appends the header of a DATA frame carrying n bytes, for
// writers that place the payload themselves.
func AppendDataHeader(dst []byte, n int) []byte {
	dst = binary.BigEndian.AppendUint16(dst, TagData)
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// AppendAck appends an ACK frame for n cumulative bytes received.
func AppendAck(dst []byte, n uint64) []byte {
	dst = binary.BigEndian.AppendUint16(dst, TagAck)
	return binary.BigEndian.AppendUint64(dst, n)
}

// AppendConnectSuccess appends a CONNECT_SUCCESS_SID frame, as a relay
// sends it; tests script relays with it and the two below.
func AppendConnectSuccess(dst []byte, sid string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, TagConnectSuccessSID)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(sid)))
	return append(dst, sid...)
}

// AppendReconnectSuccess appends a RECONNECT_SUCCESS_ACK frame for n bytes
// of the client's stream the server holds.
func AppendReconnectSuccess(dst []byte, n uint64) []byte {
	dst = binary.BigEndian.AppendUint16(dst, TagReconnectSuccessACK)
	return binary.BigEndian.AppendUint64(dst, n)
}

// AppendLongClose appends a LONG_CLOSE frame.
func AppendLongClose(dst []byte, code uint32, reason string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, TagLongClose)
	dst = binary.BigEndian.AppendUint32(dst, code)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(reason)))
	return append(dst, reason...)
}
