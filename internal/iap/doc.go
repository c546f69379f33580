// Package iap is the client's engine of the IAP relay v4 protocol, under
// the tunnel client (package tunnel): the frame codec, Stream (the
// client's end of a resumable byte stream carried over one websocket at a
// time), the hand-built, masked websocket framing of its bursts, and the
// connection wrappers that send a burst in one system call. The emulator's
// relay shares none of it, so that the two can disagree. Its errors carry
// no "iap:" prefix, except those Stream's Read and Write return as they
// are: tunnel wraps the rest once, with its own.
package iap

// Protocol constants of relay v4 that both ends need.
const (
	// Subprotocol is the websocket subprotocol both sides must speak.
	Subprotocol = "relay.tunnel.cloudproxy.app"
	// Origin is the Origin header gcloud and IAP Desktop send.
	Origin = "bot:iap-tunneler"
)
