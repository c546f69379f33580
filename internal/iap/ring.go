package iap

// ring is a circular byte buffer that grows on demand up to a limit, so an
// idle stream holds little memory and a busy one stops copying on growth
// once it reaches its working size. It is not safe for concurrent use.
type ring struct {
	buf []byte
	r   int // index of the first held byte
	n   int // bytes held
}

// minRing is the first allocation: an SSH handshake's packets, which is
// all that most of a fleet's streams ever hold; a bulk transfer doubles it
// to its working size in a few steps.
const minRing = 4 << 10

func (b *ring) len() int { return b.n }

// write appends as much of p as fits under limit bytes held and returns how
// much it took.
func (b *ring) write(p []byte, limit int) int {
	if len(p) > limit-b.n {
		p = p[:limit-b.n]
	}
	if len(p) == 0 {
		return 0
	}
	if b.n+len(p) > len(b.buf) {
		b.grow(b.n+len(p), limit)
	}
	w := (b.r + b.n) % len(b.buf)
	k := copy(b.buf[w:], p)
	copy(b.buf, p[k:])
	b.n += len(p)
	return len(p)
}

// grow reallocates to hold at least need bytes, doubling to amortise, and
// straightens the contents to start at index 0.
func (b *ring) grow(need, limit int) {
	size := min(max(2*len(b.buf), need, minRing), limit)
	buf := make([]byte, size)
	b.copyAt(buf[:b.n], 0)
	b.buf, b.r = buf, 0
}

// copyAt copies the held bytes starting off bytes after the first one into
// dst, and returns how many it copied.
func (b *ring) copyAt(dst []byte, off int) int {
	if off >= b.n {
		return 0
	}
	dst = dst[:min(len(dst), b.n-off)]
	i := (b.r + off) % len(b.buf)
	k := copy(dst, b.buf[i:])
	copy(dst[k:], b.buf)
	return len(dst)
}

// discard drops the first n held bytes.
func (b *ring) discard(n int) {
	b.n -= n
	if b.n == 0 {
		b.r = 0 // keep later writes contiguous
		return
	}
	b.r = (b.r + n) % len(b.buf)
}

// read moves held bytes into p.
func (b *ring) read(p []byte) int {
	n := b.copyAt(p, 0)
	b.discard(n)
	return n
}
