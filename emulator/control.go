package emulator

import "net/http"

// serveControl serves the control API. (Being written.)
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
