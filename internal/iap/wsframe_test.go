package iap

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
func handFrames(masked bool, payloads [][]byte) []byte {
	a := &attachment{masked: masked}
	for _, p := range payloads {
		start := a.beginMessage(len(p))
		a.buf = append(a.buf, p...)
		a.endMessage(start)
	}
	return a.buf
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
	if _, err := c.Write(handFrames(true, payloads)); err != nil {
		t.Fatal(err)
	}
	msgs := <-got
	for i, p := range payloads {
		if i >= len(msgs) || !bytes.Equal(msgs[i], p) {
			t.Fatalf("message %d (%d bytes) did not come through gorilla intact", i, len(p))
		}
	}
}

// TestHandFramesGorillaReadsUnmasked: a relay's hand-built (unmasked)
// frames read back through gorilla's client-side reader.
func TestHandFramesGorillaReadsUnmasked(t *testing.T) {
	payloads := conformancePayloads()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		rw.Write(handFrames(false, payloads))
		rw.Flush()
		// Hold the connection until the client is done reading.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		rw.ReadByte()
	}))
	defer hs.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadLimit(MaxMessage)
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, p := range payloads {
		typ, m, err := ws.ReadMessage()
		if err != nil || typ != websocket.BinaryMessage || !bytes.Equal(m, p) {
			t.Fatalf("message %d (%d bytes): type %d, %d bytes, %v", i, len(p), typ, len(m), err)
		}
	}
}
