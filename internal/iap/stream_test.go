package iap

import (
	"bytes"
	"math/rand"
	"testing"
)

// TestRing checks the ring buffer against a plain byte slice through random
// writes, peeks, discards and reads, across growth and wrap-around.
func TestRing(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		max   int // largest single operation
	}{
		{"small limit, wraps often", minRing + 7, 5000},
		{"grows to limit", 1 << 20, 70000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(1))
			var b ring
			var model []byte
			next := byte(0)
			for i := 0; i < 20000; i++ {
				n := rng.Intn(tt.max)
				switch rng.Intn(4) {
				case 0, 1:
					p := make([]byte, n)
					for j := range p {
						p[j], next = next, next+1
					}
					k := b.write(p, tt.limit)
					if want := min(n, tt.limit-len(model)); k != want {
						t.Fatalf("op %d: write took %d of %d, want %d", i, k, n, want)
					}
					model = append(model, p[:k]...)
				case 2:
					off := rng.Intn(len(model) + 1)
					got := make([]byte, n)
					k := b.copyAt(got, off)
					if want := model[off:min(len(model), off+n)]; !bytes.Equal(got[:k], want) {
						t.Fatalf("op %d: copyAt(%d, %d) differs", i, n, off)
					}
				case 3:
					got := make([]byte, n)
					k := b.read(got)
					if want := model[:min(len(model), n)]; !bytes.Equal(got[:k], want) {
						t.Fatalf("op %d: read(%d) differs", i, n)
					}
					model = model[k:]
				}
				if b.len() != len(model) || len(b.buf) > tt.limit {
					t.Fatalf("op %d: holds %d in %d, model %d, limit %d", i, b.len(), len(b.buf), len(model), tt.limit)
				}
			}
		})
	}
}

// FuzzStreamHandle feeds arbitrary relay messages to a stream that has sent
// 1000 bytes, checking that it never panics and keeps its books straight:
// whatever a hostile peer sends, acks stay within what was sent and held
// bytes within their bounds.
func FuzzStreamHandle(f *testing.F) {
	msgs := func(ms ...[]byte) []byte {
		var b []byte
		for _, m := range ms {
			b = append(b, byte(len(m)))
			b = append(b, m...)
		}
		return b
	}
	f.Add(msgs(AppendData(nil, []byte("hello")), AppendAck(nil, 10)))
	f.Add(msgs(AppendAck(nil, 1000), AppendAck(nil, 999)))
	f.Add(msgs(AppendAck(nil, 1001)))
	f.Add(msgs([]byte{0, 9, 1}, AppendLongClose(nil, 4003, "x"), AppendData(nil, []byte{1})))
	f.Add(msgs(AppendConnectSuccess(nil, "sid")))
	f.Add(msgs([]byte{0, 4, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, in []byte) {
		const sent = 1000
		s := NewStream()
		s.out.write(make([]byte, sent), sendWindow)
		s.sent = sent
		stop := make(chan struct{})
		close(stop) // a full receive buffer returns instead of waiting
		for len(in) > 0 {
			n := min(int(in[0]), len(in)-1)
			msg := in[1 : 1+n]
			in = in[1+n:]
			err := s.handle(msg, stop)
			if s.acked > s.sent || s.sent != sent || s.out.len() != int(sent-s.acked) {
				t.Fatalf("acked %d, sent %d, holding %d", s.acked, s.sent, s.out.len())
			}
			if s.in.len() > recvBuffer || s.recvd != uint64(s.in.len()) {
				t.Fatalf("received %d, holding %d", s.recvd, s.in.len())
			}
			if err != nil {
				return
			}
		}
	})
}

// TestRingStartsSmall: a ring holding a handshake packet takes 4 KiB, not
// a DATA frame's worth: a fleet keeps two per tunnel, many tunnels at once.
func TestRingStartsSmall(t *testing.T) {
	var b ring
	b.write(make([]byte, 1500), sendWindow)
	if len(b.buf) > 4<<10 {
		t.Errorf("a ring holding 1500 bytes allocated %d", len(b.buf))
	}
	b.write(make([]byte, 100<<10), sendWindow)
	if b.len() != 1500+100<<10 {
		t.Errorf("holds %d bytes, want %d", b.len(), 1500+100<<10)
	}
}
