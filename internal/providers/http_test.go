package providers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExchangeBoundsTheBody(t *testing.T) {
	bodies := map[string]string{"/small": `{"a":1}`, "/limit": strings.Repeat(" ", MaxBodyBytes), "/large": strings.Repeat("x", MaxBodyBytes+1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(bodies[r.URL.Path]))
	}))
	defer srv.Close()
	hc := NewHTTPClient(5*time.Second, 1)
	exchange := func(path string) ([]byte, error) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, body, err := Exchange(hc, req, "test", time.Now)
		return body, err
	}

	if body, err := exchange("/small"); err != nil || string(body) != `{"a":1}` {
		t.Fatalf("Exchange = %q, %v; want the body", body, err)
	}
	if body, err := exchange("/limit"); err != nil || len(body) != MaxBodyBytes {
		t.Fatalf("Exchange of a body of MaxBodyBytes = %d bytes, %v; want all of it", len(body), err)
	}
	body, err := exchange("/large")
	if !errors.Is(err, ErrBadResponse) || body != nil || strings.Contains(err.Error(), "xxx") {
		t.Fatalf("Exchange of a body over MaxBodyBytes = %d bytes, %v; want ErrBadResponse without content", len(body), err)
	}
}

// A body that never finishes is cut off by the client's Timeout whatever
// deadline the caller's context has: none, a later one, or the Timeout.
func TestExchangeIsBoundedByTheClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"a":`))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	const timeout = 200 * time.Millisecond
	hc := NewHTTPClient(timeout, 1)
	for _, tc := range []struct {
		name     string
		deadline time.Duration // 0: none
	}{{"no deadline", 0}, {"a later deadline", time.Hour}, {"the Timeout as deadline", timeout}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, _, err = Exchange(hc, req, "test", time.Now)
			if !errors.Is(err, ErrTransport) {
				t.Fatalf("Exchange of a stalled body = %v; want ErrTransport", err)
			}
			// Generous: the bound is the Timeout, a stall would be an hour.
			if took := time.Since(start); took > 20*timeout {
				t.Fatalf("Exchange returned after %v; want about %v", took, timeout)
			}
		})
	}
}
