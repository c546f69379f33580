package iap

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/gorilla/websocket"
)

// Websocket framing by hand (RFC 6455 5.2): send builds DATA and ACK
// messages straight from the send ring into the burst buffer, where gorilla
// would copy each twice more. Control frames and everything read still go
// through gorilla.

// Sizes of what send builds: an ACK message, and the longest websocket
// frame header (16-bit length and masking key) with the longest message.
const (
	ackLen         = 2 + 8
	maxWireMessage = 2 + 2 + 4 + MaxFrameLen
)

// beginMessage appends the header of a binary websocket message of n bytes,
// in one final frame as IAP requires, and returns where its payload starts.
func (a *attachment) beginMessage(n int) int {
	b := append(a.buf, 0x80|websocket.BinaryMessage)
	var mask byte
	if a.masked {
		mask = 0x80
	}
	if n < 126 {
		b = append(b, mask|byte(n))
	} else {
		b = append(b, mask|126, byte(n>>8), byte(n))
	}
	if a.masked {
		b = binary.LittleEndian.AppendUint32(b, rand.Uint32())
	}
	a.buf = b
	return len(b)
}

// endMessage masks the payload from p on, for a client.
func (a *attachment) endMessage(p int) {
	if a.masked {
		maskBytes([4]byte(a.buf[p-4:p]), a.buf[p:])
	}
}

// maskBytes XORs b with key repeated, eight bytes at a time.
func maskBytes(key [4]byte, b []byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= key[i&3]
	}
}
