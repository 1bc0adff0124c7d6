package sim_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statusbridge/statusbridge/internal/providers/sim"
)

var simNow = time.Date(2026, 11, 22, 3, 4, 12, 0, time.UTC)

func appotaPayServer(t *testing.T) (*sim.Server, string) {
	t.Helper()
	s := sim.New(sim.SandboxCredentials(), sim.WithClock(func() time.Time { return simNow }))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/appotapay/api/v1/service/bill/transaction/"
}

// appotaPayToken signs claims with golang-jwt's own encoder (header members
// in map order, unlike the client), so the simulator is shown to verify
// the token rather than match bytes.
func appotaPayToken(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodClaims(c sim.Credentials) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":     c.AppotaPayPartnerCode,
		"jti":     c.AppotaPayAPIKey + "-" + strconv.FormatInt(simNow.Unix(), 10),
		"api_key": c.AppotaPayAPIKey,
		"exp":     simNow.Add(5 * time.Minute).Unix(),
	}
}

func TestAppotaPayAuth(t *testing.T) {
	c := sim.SandboxCredentials()
	key := []byte(c.AppotaPaySecretKey)
	cty := map[string]any{"cty": "appotapay-api;v=1"}
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		m := goodClaims(c)
		change(m)
		return m
	}
	good := appotaPayToken(t, jwt.SigningMethodHS256, key, cty, goodClaims(c))
	tests := []struct {
		name   string
		header string
		code   int // 0: accepted
	}{
		{"bearer token", "Bearer " + good, 0},
		{"token without Bearer", good, 0},
		{"lower-case bearer", "bearer " + good, 0},
		{"no header", "", 2},
		{"Bearer alone", "Bearer ", 2},
		{"garbage", "Bearer not.a.jwt", 2},
		{"wrong secret key", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, []byte("other"), cty, goodClaims(c)), 2},
		{"HS384", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS384, key, cty, goodClaims(c)), 2},
		{"alg none", "Bearer " + appotaPayToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, cty, goodClaims(c)), 2},
		{"no cty", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, key, nil, goodClaims(c)), 2},
		{"wrong cty", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, key, map[string]any{"cty": "appotapay-api;v=2"}, goodClaims(c)), 2},
		{"no exp", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, key, cty, with(func(m jwt.MapClaims) { delete(m, "exp") })), 2},
		{"expired", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, key, cty, with(func(m jwt.MapClaims) { m["exp"] = simNow.Unix() - 1 })), 2},
		{"expiry over an hour away", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, key, cty, with(func(m jwt.MapClaims) { m["exp"] = simNow.Add(2 * time.Hour).Unix() })), 2},
		{"wrong partner", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, key, cty, with(func(m jwt.MapClaims) { m["iss"] = "OTHER" })), 11},
		{"no partner", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, key, cty, with(func(m jwt.MapClaims) { delete(m, "iss") })), 11},
		{"wrong api_key", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, key, cty, with(func(m jwt.MapClaims) { m["api_key"] = "OTHER" })), 14},
		{"jti of another key", "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, key, cty, with(func(m jwt.MapClaims) { m["jti"] = "OTHER-1" })), 14},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, base := appotaPayServer(t)
			s.Script(sim.AppotaPay, "auth-ref", sim.Success)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"auth-ref", nil)
			if tc.header != "" {
				req.Header.Set("X-APPOTAPAY-AUTH", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				ErrorCode int `json:"errorCode"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			calls := s.Calls(sim.AppotaPay, "auth-ref")
			if tc.code == 0 {
				if resp.StatusCode != http.StatusOK || body.ErrorCode != 0 || calls != 1 {
					t.Errorf("HTTP %d errorCode %d calls %d, want 200, 0, 1", resp.StatusCode, body.ErrorCode, calls)
				}
				return
			}
			if resp.StatusCode != http.StatusUnauthorized || body.ErrorCode != tc.code {
				t.Errorf("HTTP %d errorCode %d, want 401 with errorCode %d", resp.StatusCode, body.ErrorCode, tc.code)
			}
			if calls != 0 {
				t.Errorf("a refused call consumed %d script steps", calls)
			}
		})
	}
}

func TestAppotaPayAnswers(t *testing.T) {
	c := sim.SandboxCredentials()
	auth := "Bearer " + appotaPayToken(t, jwt.SigningMethodHS256, []byte(c.AppotaPaySecretKey),
		map[string]any{"cty": "appotapay-api;v=1"}, goodClaims(c))
	tests := []struct {
		outcome  sim.Outcome
		code     int64
		tx       bool
		signedBy string // "" when the answer carries no signature
	}{
		{sim.Success, 0, true, c.AppotaPaySecretKey},
		{sim.Failed, 33, true, c.AppotaPaySecretKey},
		{sim.NotFound, 36, false, c.AppotaPaySecretKey},
		{sim.NotReceived, 36, false, c.AppotaPaySecretKey},
		{sim.UnknownCode, 777, false, c.AppotaPaySecretKey},
		{sim.BadSignature, 0, true, "forged-" + c.AppotaPaySecretKey},
		{sim.Unsigned, 0, true, ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.outcome), func(t *testing.T) {
			s, base := appotaPayServer(t)
			ref := "answer-" + string(tc.outcome)
			s.Script(sim.AppotaPay, ref, tc.outcome)
			first := getAppotaPay(t, base+ref, auth)
			again := getAppotaPay(t, base+ref, auth)
			if !bytes.Equal(first, again) {
				t.Errorf("answers for one reference differ:\n%s\n%s", first, again)
			}
			d := json.NewDecoder(bytes.NewReader(first))
			d.UseNumber()
			var body struct {
				ErrorCode   json.Number       `json:"errorCode"`
				Transaction map[string]any    `json:"transaction"`
				BillDetail  []json.RawMessage `json:"billDetail"`
				Signature   *string           `json:"signature"`
			}
			if err := d.Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.ErrorCode.String() != strconv.FormatInt(tc.code, 10) {
				t.Errorf("errorCode = %s, want %d", body.ErrorCode, tc.code)
			}
			if (body.Transaction != nil) != tc.tx || (len(body.BillDetail) > 0) != tc.tx {
				t.Errorf("transaction %v and billDetail %d items, want them: %v", body.Transaction, len(body.BillDetail), tc.tx)
			}
			if tc.tx && body.Transaction["time"] != "22-11-2026 10:04:12" {
				t.Errorf("time = %v, want the clock in UTC+7 as dd-MM-yyyy HH:mm:ss", body.Transaction["time"])
			}
			if tc.signedBy == "" {
				if body.Signature != nil {
					t.Errorf("unsigned answer carries signature %q", *body.Signature)
				}
				return
			}
			// Numbers as written, strings decoded, absent values empty.
			text := func(v any) string {
				switch v := v.(type) {
				case string:
					return v
				case json.Number:
					return v.String()
				}
				return ""
			}
			message := "amount=" + text(body.Transaction["amount"]) + "&appotapayTransId=" + text(body.Transaction["appotapayTransId"]) +
				"&billAmount=" + text(body.Transaction["billAmount"]) + "&errorCode=" + body.ErrorCode.String() +
				"&time=" + text(body.Transaction["time"])
			h := hmac.New(sha256.New, []byte(tc.signedBy))
			h.Write([]byte(message))
			if body.Signature == nil || *body.Signature != hex.EncodeToString(h.Sum(nil)) {
				t.Errorf("signature does not sign %q", message)
			}
		})
	}

	t.Run("pending", func(t *testing.T) {
		s, base := appotaPayServer(t)
		seen := map[string]bool{}
		for i := range 16 {
			ref := "pending-" + strconv.Itoa(i)
			s.Script(sim.AppotaPay, ref, sim.Pending)
			var body struct {
				ErrorCode int `json:"errorCode"`
			}
			if err := json.Unmarshal(getAppotaPay(t, base+ref, auth), &body); err != nil {
				t.Fatal(err)
			}
			seen[strconv.Itoa(body.ErrorCode)] = true
		}
		if len(seen) != 2 || !seen["34"] || !seen["35"] {
			t.Errorf("pending codes over 16 references: %v, want both 34 and 35", seen)
		}
	})
}

func getAppotaPay(t *testing.T, url, auth string) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("X-APPOTAPAY-AUTH", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
