package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// ayopopCall is one status call, built by hand so that each test can break
// exactly one part of it.
type ayopopCall struct {
	path    string // default /ayopop/api/v2/bill/status
	version string // VERSION header
	key     string // KEY header
	token   string // TOKEN header
	body    string
}

func ayopopToken(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func ayopopCreds() Credentials {
	return Credentials{AyopopKey: "UP0t6fB4qZ7j", AyopopSecret: "test-api-secret"}
}

// validAyopopCall is a correct call for ref.
func validAyopopCall(t *testing.T, ref string) ayopopCall {
	c := ayopopCreds()
	return ayopopCall{
		version: "2.0",
		key:     c.AyopopKey,
		token:   ayopopToken(t, c.AyopopSecret, jwt.MapClaims{"partnerId": c.AyopopKey, "refNumber": ref}),
		body:    `{"partnerId":"` + c.AyopopKey + `","refNumber":"` + ref + `"}`,
	}
}

func (c ayopopCall) do(t *testing.T, srv *httptest.Server) (int, map[string]any) {
	t.Helper()
	path := c.path
	if path == "" {
		path = "/ayopop/api/v2/bill/status"
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"VERSION": c.version, "KEY": c.key, "TOKEN": c.token} {
		if v != "" {
			req.Header.Set(name, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("answer is not JSON: %q", raw)
	}
	return resp.StatusCode, body
}

func TestAyopopAcceptsDocumentedRequests(t *testing.T) {
	s := New(ayopopCreds(), WithDefaultScript(Success))
	srv := httptest.NewServer(s)
	defer srv.Close()

	// providers.md §4.2: the seed's header member order, {"typ","alg"},
	// signed with test-api-secret. It must verify over the bytes received.
	seedOrder := validAyopopCall(t, "prdtesttd11345")
	seedOrder.token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9" +
		".eyJwYXJ0bmVySWQiOiJVUDB0NmZCNHFaN2oiLCJyZWZOdW1iZXIiOiJwcmR0ZXN0dGQxMTM0NSJ9" +
		".H4JTBxo9QvvxlAV_QEHocEPhdUn7c3nB95yGPoLlfjc"
	noBody := validAyopopCall(t, "no-body")
	noBody.body = "" // as every official sample sends it
	v1 := validAyopopCall(t, "v1-call")
	v1.path, v1.version = "/ayopop/api/v1/bill/status", "1.0"

	for name, tc := range map[string]struct {
		call ayopopCall
		ref  string
	}{
		"v2 with body":          {validAyopopCall(t, "with-body"), "with-body"},
		"seed header order":     {seedOrder, "prdtesttd11345"},
		"no body":               {noBody, "no-body"},
		"v1 path and VERSION":   {v1, "v1-call"},
		"hostile reference":     {validAyopopCall(t, "a/b?c#d"), "a/b?c#d"},
		"token with future exp": {withClaim(t, validAyopopCall(t, "exp"), "exp", 4102444800), "exp"},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := tc.call.do(t, srv)
			if status != http.StatusOK || body["responseCode"] != 0.0 || body["success"] != true {
				t.Fatalf("answer %d %v, want HTTP 200 with responseCode 0 and success true", status, body)
			}
			data, _ := body["data"].(map[string]any)
			if data["refNumber"] != tc.ref {
				t.Errorf("data.refNumber = %v, want %q", data["refNumber"], tc.ref)
			}
			if got := s.Calls(Ayopop, tc.ref); got != 1 {
				t.Errorf("calls = %d, want 1", got)
			}
		})
	}
}

// withClaim re-signs c's token with one more claim, in the body too.
func withClaim(t *testing.T, c ayopopCall, name string, value any) ayopopCall {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(c.token, claims); err != nil {
		t.Fatal(err)
	}
	claims[name] = value
	c.token = ayopopToken(t, ayopopCreds().AyopopSecret, claims)
	body, _ := json.Marshal(claims)
	c.body = string(body)
	return c
}

func TestAyopopRejectsBadRequests(t *testing.T) {
	creds := ayopopCreds()
	tests := []struct {
		name   string
		change func(c *ayopopCall)
		status int
	}{
		{"wrong secret", func(c *ayopopCall) {
			c.token = ayopopToken(t, creds.AyopopSecret+"-wrong", jwt.MapClaims{"partnerId": creds.AyopopKey, "refNumber": "R"})
		}, http.StatusUnauthorized},
		{"KEY differs from partnerId", func(c *ayopopCall) {
			c.token = ayopopToken(t, creds.AyopopSecret, jwt.MapClaims{"partnerId": "another", "refNumber": "R"})
			c.body = `{"partnerId":"another","refNumber":"R"}`
		}, http.StatusUnauthorized},
		{"unknown KEY", func(c *ayopopCall) { c.key = "another" }, http.StatusUnauthorized},
		{"no KEY", func(c *ayopopCall) { c.key = "" }, http.StatusUnauthorized},
		{"no TOKEN", func(c *ayopopCall) { c.token = "" }, http.StatusUnauthorized},
		{"TOKEN signed HS512", func(c *ayopopCall) {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"partnerId": creds.AyopopKey, "refNumber": "R"}).SignedString([]byte(creds.AyopopSecret))
			if err != nil {
				t.Fatal(err)
			}
			c.token = tok
		}, http.StatusUnauthorized},
		{"unsigned TOKEN", func(c *ayopopCall) {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"partnerId": creds.AyopopKey, "refNumber": "R"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			c.token = tok
		}, http.StatusUnauthorized},
		{"claims tampered after signing", func(c *ayopopCall) {
			parts := strings.Split(c.token, ".")
			other := strings.Split(ayopopToken(t, "x", jwt.MapClaims{"partnerId": creds.AyopopKey, "refNumber": "S"}), ".")
			c.token = parts[0] + "." + other[1] + "." + parts[2]
			c.body = ""
		}, http.StatusUnauthorized},
		{"expired TOKEN", func(c *ayopopCall) { *c = withClaim(t, *c, "exp", 946684800) }, http.StatusUnauthorized},
		{"VERSION 1.0 on the v2 path", func(c *ayopopCall) { c.version = "1.0" }, http.StatusBadRequest},
		{"VERSION 2.0 on the v1 path", func(c *ayopopCall) { c.path = "/ayopop/api/v1/bill/status" }, http.StatusBadRequest},
		{"no VERSION", func(c *ayopopCall) { c.version = "" }, http.StatusBadRequest},
		{"unknown version path", func(c *ayopopCall) { c.path = "/ayopop/api/v3/bill/status" }, http.StatusNotFound},
		{"body names another reference", func(c *ayopopCall) { c.body = `{"partnerId":"` + creds.AyopopKey + `","refNumber":"S"}` }, http.StatusBadRequest},
		{"body names another partner", func(c *ayopopCall) { c.body = `{"partnerId":"another","refNumber":"R"}` }, http.StatusBadRequest},
		{"body has a member the claims lack", func(c *ayopopCall) {
			c.body = `{"partnerId":"` + creds.AyopopKey + `","refNumber":"R","amount":1}`
		}, http.StatusBadRequest},
		{"body is not JSON", func(c *ayopopCall) { c.body = "partnerId=x" }, http.StatusBadRequest},
		{"claims without refNumber", func(c *ayopopCall) {
			c.token = ayopopToken(t, creds.AyopopSecret, jwt.MapClaims{"partnerId": creds.AyopopKey})
			c.body = ""
		}, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(creds, WithDefaultScript(Success))
			srv := httptest.NewServer(s)
			defer srv.Close()
			call := validAyopopCall(t, "R")
			tc.change(&call)
			status, body := call.do(t, srv)
			if status != tc.status {
				t.Errorf("HTTP %d, want %d (%v)", status, tc.status, body)
			}
			// Ayopop's shape, with a code outside 0–399 so that no reader
			// takes it for a verdict.
			if rc, _ := body["responseCode"].(float64); rc < 400 || body["success"] != false {
				t.Errorf("body %v, want success false and a responseCode outside 0–399", body)
			}
			if got := s.TotalCalls(Ayopop); got != 0 {
				t.Errorf("a rejected request used %d script steps", got)
			}
		})
	}
}

func TestAyopopOutcomes(t *testing.T) {
	s := New(ayopopCreds())
	srv := httptest.NewServer(s)
	defer srv.Close()
	tests := []struct {
		outcome Outcome
		status  int
		rc      float64
		success bool
	}{
		{Success, 200, 0, true},
		{BadSignature, 200, 0, true},
		{Unsigned, 200, 0, true},
		{Pending, 200, 299, true},
		{Failed, 200, 101, false},
		{NotFound, 200, ayopopNotFoundCode, false},
		{NotReceived, 200, ayopopNotFoundCode, false},
		{UnknownCode, 200, 777, false},
		{AuthError, 401, 401, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.outcome), func(t *testing.T) {
			ref := "outcome-" + string(tc.outcome)
			s.Script(Ayopop, ref, tc.outcome)
			status, body := validAyopopCall(t, ref).do(t, srv)
			if status != tc.status || body["responseCode"] != tc.rc || body["success"] != tc.success {
				t.Errorf("answer %d %v, want HTTP %d responseCode %v success %t", status, body, tc.status, tc.rc, tc.success)
			}
			if msg, _ := body["message"].(map[string]any); msg["ID"] == nil || msg["EN"] == nil {
				t.Errorf("message %v lacks ID or EN", body["message"])
			}
		})
	}

	t.Run("success data is stable per reference", func(t *testing.T) {
		s.Script(Ayopop, "stable", Success)
		_, first := validAyopopCall(t, "stable").do(t, srv)
		_, second := validAyopopCall(t, "stable").do(t, srv)
		d1, _ := first["data"].(map[string]any)
		d2, _ := second["data"].(map[string]any)
		for _, field := range []string{"transactionId", "amount", "totalAdmin", "productCode", "token", "accountNumber"} {
			if d1[field] == nil || d1[field] != d2[field] {
				t.Errorf("%s: %v then %v", field, d1[field], d2[field])
			}
		}
		if d1["amount"].(float64) <= d1["totalAdmin"].(float64) {
			t.Errorf("amount %v must include totalAdmin %v", d1["amount"], d1["totalAdmin"])
		}
	})

	t.Run("wrong shape", func(t *testing.T) {
		s.Script(Ayopop, "shape", WrongShape)
		_, body := validAyopopCall(t, "shape").do(t, srv)
		if _, isObject := body["data"].(map[string]any); isObject {
			t.Errorf("wrong shape answered a data object: %v", body)
		}
	})
}
