// Package iap is the engine of the IAP relay v4 protocol, shared by the
// tunnel client (package tunnel) and the emulator's relay: the frame codec,
// Stream (one end of a resumable byte stream carried over one websocket at
// a time), the hand-built websocket framing of its bursts, and the
// connection wrappers that send a burst in one system call. Its errors
// carry no "iap:" prefix, except those Stream's Read and Write return as
// they are: tunnel and the emulator wrap the rest once, with theirs.
package iap

// Protocol constants of relay v4 that both ends need.
const (
	// Subprotocol is the websocket subprotocol both sides must speak.
	Subprotocol = "relay.tunnel.cloudproxy.app"
	// Origin is the Origin header gcloud and IAP Desktop send.
	Origin = "bot:iap-tunneler"
)
