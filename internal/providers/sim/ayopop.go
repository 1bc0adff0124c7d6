package sim

import "net/http"

// serveAyopop is replaced by the Ayopop simulator (issue 3).
func (s *Server) serveAyopop(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotImplemented, map[string]any{"message": "ayopop simulator not built yet"})
}
