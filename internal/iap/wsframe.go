package iap

import (
	"crypto/rand"
	"encoding/binary"

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
// in one final frame as IAP requires, masked as a client's must be, and
// returns where its payload starts.
func (a *attachment) beginMessage(n int) int {
	b := append(a.buf, 0x80|websocket.BinaryMessage)
	if n < 126 {
		b = append(b, 0x80|byte(n))
	} else {
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	}
	key := a.keys.next()
	a.buf = append(b, key[:]...)
	return len(a.buf)
}

// endMessage masks the payload from p on.
func (a *attachment) endMessage(p int) {
	maskBytes([4]byte(a.buf[p-4:p]), a.buf[p:])
}

// maskKeys hands out masking keys from crypto/rand, which RFC 6455 5.3
// requires ("a strong source of entropy"), so that a proxy in the path
// cannot predict them; it reads them a thousand at a time, not a system
// call per frame.
type maskKeys struct {
	buf [4096]byte
	pos int
}

func (m *maskKeys) next() [4]byte {
	if m.pos == 0 || m.pos == len(m.buf) {
		rand.Read(m.buf[:]) // never fails (Go 1.24+: it crashes the program instead)
		m.pos = 0
	}
	k := [4]byte(m.buf[m.pos:])
	m.pos += 4
	return k
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
