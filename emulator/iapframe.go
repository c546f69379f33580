//go:build unix

package emulator

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The relay v4 subprotocol as the relay sees it, written from what clients
// send and expect (gcloud's iap_tunnel_websocket*.py, IAP Desktop's
// SshRelayFormat.cs; ../shared/reference/iap-protocol.md), apart from
// gkessh's own codec so that a misreading cannot be shared. Every relay
// message is one binary websocket message: a big-endian u16 tag and a body.
const (
	relaySubprotocol = "relay.tunnel.cloudproxy.app"

	tagConnectSuccessSID   = 0x0001 // u32 length, SID
	tagReconnectSuccessACK = 0x0002 // u64: client bytes the relay holds
	tagData                = 0x0004 // u32 length (1..16384), payload
	tagAck                 = 0x0007 // u64: cumulative bytes received

	// relayMaxData is the largest DATA payload either side sends; clients
	// cut their writes into frames of at most this.
	relayMaxData = 16384
)

// Close codes, with IAP Desktop's names.
const (
	closeErrorUnknown           = 4000
	closeSIDUnknown             = 4001
	closeSIDInUse               = 4002
	closeFailedToConnect        = 4003 // "failed to connect to backend"
	closeBadAck                 = 4005
	closeInvalidWebsocketOpcode = 4007
	closeDestinationWriteFailed = 4009
	closeDestinationReadFailed  = 4010
	closeInvalidData            = 4013
	closeNotAuthorized          = 4033
	closeLookupFailed           = 4047
	closeFailedToRewind         = 4074
)

// relayFrame is one message a client sent. Payload aliases the message.
type relayFrame struct {
	tag     uint16
	ack     uint64 // tagAck
	payload []byte // tagData
}

var errRelayShort = errors.New("message ends inside its frame")

// parseClientFrame decodes a message from a client. The relay is stricter
// than clients are with it: a DATA frame must be 1..16384 bytes, and
// nothing may follow a frame, since gcloud and IAP Desktop send neither;
// a client that does is what the emulator is here to catch. Unknown tags
// are returned with only tag set, to be skipped.
func parseClientFrame(msg []byte) (relayFrame, error) {
	if len(msg) < 2 {
		return relayFrame{}, errRelayShort
	}
	f := relayFrame{tag: binary.BigEndian.Uint16(msg)}
	body := msg[2:]
	switch f.tag {
	case tagData:
		if len(body) < 4 {
			return relayFrame{}, errRelayShort
		}
		n := binary.BigEndian.Uint32(body)
		if n == 0 || n > relayMaxData {
			return relayFrame{}, fmt.Errorf("DATA frame of %d bytes, want 1 to %d", n, relayMaxData)
		}
		if uint64(len(body)-4) < uint64(n) {
			return relayFrame{}, errRelayShort
		}
		if uint64(len(body)-4) > uint64(n) {
			return relayFrame{}, fmt.Errorf("%d bytes after a DATA frame", uint64(len(body)-4)-uint64(n))
		}
		f.payload = body[4:]
	case tagAck:
		if len(body) < 8 {
			return relayFrame{}, errRelayShort
		}
		if len(body) > 8 {
			return relayFrame{}, fmt.Errorf("%d bytes after an ACK frame", len(body)-8)
		}
		f.ack = binary.BigEndian.Uint64(body)
	case tagConnectSuccessSID, tagReconnectSuccessACK:
		return relayFrame{}, fmt.Errorf("client sent the relay's frame %#04x", f.tag)
	}
	return f, nil
}

func appendSIDFrame(b []byte, sid string) []byte {
	b = binary.BigEndian.AppendUint16(b, tagConnectSuccessSID)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sid)))
	return append(b, sid...)
}

func appendReconnectAckFrame(b []byte, n uint64) []byte {
	b = binary.BigEndian.AppendUint16(b, tagReconnectSuccessACK)
	return binary.BigEndian.AppendUint64(b, n)
}

func appendAckFrame(b []byte, n uint64) []byte {
	b = binary.BigEndian.AppendUint16(b, tagAck)
	return binary.BigEndian.AppendUint64(b, n)
}

// appendDataHeader appends a DATA frame's tag and length; the payload follows.
func appendDataHeader(b []byte, n int) []byte {
	b = binary.BigEndian.AppendUint16(b, tagData)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}
