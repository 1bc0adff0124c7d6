package providers

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExchangeReadsIntoARecycledBuffer(t *testing.T) {
	bodies := map[string]string{"/small": `{"a":1}`, "/large": strings.Repeat("x", MaxBodyBytes+1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(bodies[r.URL.Path]))
	}))
	defer srv.Close()
	hc := NewHTTPClient(5*time.Second, 1)
	get := func(path string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}

	buf := GetBuffer()
	buf.WriteString("left over from an earlier body")
	_, body, err := Exchange(hc, get("/small"), "test", buf)
	if err != nil || string(body) != `{"a":1}` {
		t.Fatalf("Exchange = %q, %v; want the body alone", body, err)
	}
	PutBuffer(buf)

	buf = GetBuffer()
	_, body, err = Exchange(hc, get("/large"), "test", buf)
	if !errors.Is(err, ErrBadResponse) || body != nil || strings.Contains(err.Error(), "xxx") {
		t.Fatalf("Exchange of a body over MaxBodyBytes = %d bytes, %v; want ErrBadResponse without content", len(body), err)
	}
	if buf.Cap() <= maxPooledBuffer {
		t.Fatalf("the buffer holds %d bytes after a large body; want more than %d", buf.Cap(), maxPooledBuffer)
	}
	PutBuffer(buf) // dropped, not pooled: the pool keeps small buffers only
}
