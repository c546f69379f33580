package emulator

import "net/http"

// serveCompute serves the Compute API subset. (Being written.)
func (s *Server) serveCompute(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
