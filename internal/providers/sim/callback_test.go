package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestAyopopCallback(t *testing.T) {
	t.Parallel()
	got := make(chan map[string]any, 2)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("callback body %q: %v", b, err)
		}
		got <- body
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(receiver.Close)
	s := New(SandboxCredentials(), WithCallbackURL(receiver.URL))
	now := time.Now()

	const ref = "pending*50,success#cb-1"
	if o := s.next(Ayopop, ref, now); o != Pending {
		t.Fatalf("before the callback: %s", o)
	}
	status, err := s.AyopopCallback(t.Context(), ref, false)
	if err != nil || status != http.StatusOK {
		t.Fatalf("callback: %d %v", status, err)
	}
	body := <-got
	data, _ := body["data"].(map[string]any)
	if body["responseCode"] != float64(0) || body["success"] != true || data["refNumber"] != ref {
		t.Errorf("callback body %v", body)
	}
	if o := s.next(Ayopop, ref, now); o != Success {
		t.Errorf("after the callback the status API answers %s, want success", o)
	}

	// A forged callback claims success; the status API still says pending.
	const forged = "pending*50,success#cb-2"
	if _, err := s.AyopopCallback(t.Context(), forged, true); err != nil {
		t.Fatal(err)
	}
	if body := <-got; body["success"] != true {
		t.Errorf("forged callback %v", body)
	}
	if o := s.next(Ayopop, forged, now); o != Pending {
		t.Errorf("after a forged callback the status API answers %s, want pending", o)
	}

	if _, err := New(SandboxCredentials()).AyopopCallback(t.Context(), ref, false); err == nil {
		t.Error("a callback without a URL was sent")
	}
}
