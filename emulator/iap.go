package emulator

import "net/http"

// serveIAP serves the IAP relay websocket. (Being written.)
func (s *Server) serveIAP(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
