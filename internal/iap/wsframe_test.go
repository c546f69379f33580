package iap

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/gorilla/websocket"
)

// conformancePayloads are messages of every header form the hand framing
// writes: 7-bit and 16-bit lengths, an ACK, and the longest message.
func conformancePayloads() [][]byte {
	var out [][]byte
	for _, n := range []int{1, ackLen, 125, 126, 127, 4096, MaxFrameLen} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7 + n)
		}
		out = append(out, p)
	}
	return out
}

// handFrames frames payloads the way send does, one message each.
func handFrames(payloads [][]byte) []byte {
	a := &attachment{}
	for _, p := range payloads {
		start := a.beginMessage(len(p))
		a.buf = append(a.buf, p...)
		a.endMessage(start)
	}
	return a.buf
}

// TestMaskKeysFromCryptoRand: the frames' masking keys are crypto/rand's
// bytes, as RFC 6455 5.3 asks ("a strong source of entropy"): with
// crypto/rand made deterministic, they are its output, in order, across a
// refill. (math/rand/v2's keys, as before, differ from it.)
func TestMaskKeysFromCryptoRand(t *testing.T) {
	var a attachment
	const frames = 1500 // past the first 1024 keys read at once
	cryptotest.SetGlobalRandom(t, 42)
	want := make([]byte, 2*4096)
	rand.Read(want)
	cryptotest.SetGlobalRandom(t, 42)
	var got []byte
	for range frames {
		p := a.beginMessage(ackLen)
		got = append(got, a.buf[p-4:p]...)
		a.buf = a.buf[:0]
	}
	if !bytes.Equal(got, want[:4*frames]) {
		t.Fatalf("masking keys are not crypto/rand's bytes:\n got % x...\nwant % x...", got[:16], want[:16])
	}
}

// TestHandFramesGorillaReadsMasked: a client's hand-built (masked) frames
// read back through gorilla's server-side reader, byte for byte, so a
// gorilla upgrade that disagrees with them fails here.
func TestHandFramesGorillaReadsMasked(t *testing.T) {
	payloads := conformancePayloads()
	got := make(chan [][]byte, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer ws.Close()
		ws.SetReadLimit(MaxMessage)
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var msgs [][]byte
		for range payloads {
			typ, m, err := ws.ReadMessage()
			if err != nil || typ != websocket.BinaryMessage {
				t.Errorf("gorilla read: type %d, %v", typ, err)
				break
			}
			msgs = append(msgs, m)
		}
		got <- msgs
	}))
	defer hs.Close()
	c, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	if _, err := c.Write(handFrames(payloads)); err != nil {
		t.Fatal(err)
	}
	msgs := <-got
	for i, p := range payloads {
		if i >= len(msgs) || !bytes.Equal(msgs[i], p) {
			t.Fatalf("message %d (%d bytes) did not come through gorilla intact", i, len(p))
		}
	}
}
