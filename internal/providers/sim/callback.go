package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// WithCallbackURL sets where the Ayopop simulator POSTs its callbacks
// (the bridge's POST /callbacks/ayopop). Without it, callbacks are refused.
func WithCallbackURL(url string) Option { return func(s *Server) { s.callbackURL = url } }

// SetCallbackURL changes where callbacks go, for a listener that starts
// after the simulators.
func (s *Server) SetCallbackURL(url string) {
	s.mu.Lock()
	s.callbackURL = url
	s.mu.Unlock()
}

// AyopopCallback settles reference now and tells the bridge, as Ayopop
// does when a transaction it was processing ends: the reference's script
// jumps to its last step, which the status API answers from then on, and
// the simulator POSTs Ayopop's callback for that outcome. With forge, the
// callback claims success and the script is left alone: a forged callback,
// which the status API contradicts. It returns the listener's HTTP status.
func (s *Server) AyopopCallback(ctx context.Context, reference string, forge bool) (int, error) {
	s.mu.Lock()
	url := s.callbackURL
	s.mu.Unlock()
	if url == "" {
		return 0, errors.New("no callback URL configured")
	}
	final := Success
	if !forge {
		s.mu.Lock()
		st := s.state(Ayopop, reference)
		steps := s.script(st, reference)
		final = steps[len(steps)-1]
		st.steps, st.calls = []Outcome{final}, 0
		s.mu.Unlock()
	}
	tx := ayopopTransaction(reference)
	var body map[string]any
	switch final {
	case Success:
		body = ayopopBody(0, true, "Transaksi Anda Telah Berhasil", "Your transaction was successful", tx)
	case Failed:
		tx["token"] = ""
		body = ayopopBody(101, false, "Transaksi Anda gagal", "Your transaction failed", tx)
	default:
		tx["token"] = ""
		body = ayopopBody(299, true, "Transaksi sedang dalam proses", "Your transaction is processing", tx)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("callback: %w", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// postCallback serves POST /_sim/callbacks/ayopop/{reference}[?forge=1].
func (s *Server) postCallback(w http.ResponseWriter, r *http.Request) {
	status, err := s.AyopopCallback(r.Context(), r.PathValue("reference"), r.URL.Query().Get("forge") != "")
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"callback_status": status})
}
