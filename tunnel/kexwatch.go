package tunnel

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync/atomic"
)

// SSH transport framing (RFC 4253 sections 4.2 and 6), as an SSH client
// sends it before its first SSH_MSG_NEWKEYS: an identification line, then
// binary packets in plaintext with no MAC, each
//
//	uint32 packet_length (what follows, without itself)
//	byte   padding_length
//	byte   message type (the payload's first byte)
//	...    rest of payload, padding
//
// A client sends SSH_MSG_NEWKEYS only once it has verified the server's host
// key; everything after it is encrypted, so the watch stops there.
const (
	msgNewKeys    = 21
	maxIdentLine  = 255       // RFC 4253 4.2, CR LF included
	maxPacketSize = 256 << 10 // far above what any client sends during key exchange
)

// kexWatch follows an SSH client's stream, fed to it in pieces of any size,
// until the client sends SSH_MSG_NEWKEYS. It only reads the bytes.
type kexWatch struct {
	identSeen bool
	identLen  int
	hdr       [6]byte // packet_length, padding_length, message type
	have      int     // bytes of hdr filled
	skip      int     // bytes left of the current packet
	// done: NEWKEYS was seen, or the stream is not SSH as expected and
	// the watch gave up; either way there is nothing more to learn.
	done    bool
	newKeys bool

	// down counts the bytes written to the client; atNewKeys is down when
	// the client sent NEWKEYS (-1 before).
	down      atomic.Int64
	atNewKeys atomic.Int64
}

func (k *kexWatch) feed(p []byte) {
	for len(p) > 0 && !k.done {
		switch {
		case !k.identSeen:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				k.identLen += len(p)
				k.done = k.identLen > maxIdentLine
				return
			}
			k.identSeen, p = true, p[i+1:]
			k.done = k.identLen+i+1 > maxIdentLine
		case k.skip > 0:
			n := min(k.skip, len(p))
			k.skip, p = k.skip-n, p[n:]
		default:
			n := copy(k.hdr[k.have:], p)
			k.have, p = k.have+n, p[n:]
			if k.have < len(k.hdr) {
				return
			}
			k.have = 0
			size := binary.BigEndian.Uint32(k.hdr[:4])
			switch {
			case size < 6 || size > maxPacketSize:
				k.done = true // not SSH framing: give up
			case k.hdr[5] == msgNewKeys:
				k.done, k.newKeys = true, true
				k.atNewKeys.Store(k.down.Load())
			default:
				k.skip = int(size) - 2 // padding_length and type are read
			}
		}
	}
}

// kexIncomplete reports whether the stream, now ended, stopped during key
// exchange: the client left before it accepted the host key, or before it
// got that far.
func (k *kexWatch) kexIncomplete() bool { return !k.done }

// received is how many bytes went to the client after its NEWKEYS; 0 when
// it sent none.
func (k *kexWatch) received() int64 {
	if !k.newKeys {
		return 0
	}
	return k.down.Load() - k.atNewKeys.Load()
}

// countedWriter passes writes through, counting them for watch.
type countedWriter struct {
	io.Writer
	watch *kexWatch
}

func (w countedWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.watch.down.Add(int64(n))
	return n, err
}

// watchedReader passes reads through, showing them to watch until it is
// done; after that a read costs one extra branch.
type watchedReader struct {
	io.Reader
	watch *kexWatch
}

func (r watchedReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if !r.watch.done {
		r.watch.feed(p[:n])
	}
	return n, err
}
