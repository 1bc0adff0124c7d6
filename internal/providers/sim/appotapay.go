package sim

import "net/http"

// serveAppotaPay is replaced by the AppotaPay simulator (issue 3).
func (s *Server) serveAppotaPay(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotImplemented, map[string]any{"message": "appotapay simulator not built yet"})
}
