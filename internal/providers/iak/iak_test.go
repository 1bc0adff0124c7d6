package iak

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestSign(t *testing.T) {
	// Vectors from providers.md §4.2, computed independently of this code.
	tests := []struct{ username, key, suffix, want string }{
		{"123123123", "testapikey", "cs", "206ec56d4ddb6569a9874724100adc1a"},
		{"123123123", "testapikey", "091283746520", "51669abe1f5e83e4155791d2d34778a1"},
	}
	for _, tc := range tests {
		if got := sign(tc.username, tc.key, tc.suffix); got != tc.want {
			t.Errorf("sign(%q, %q, %q) = %q, want %q", tc.username, tc.key, tc.suffix, got, tc.want)
		}
	}
}

func TestRequestGolden(t *testing.T) {
	var got []byte
	var header http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/prefix/api/v1/bill/check" {
			t.Errorf("request %s %s, want POST /prefix/api/v1/bill/check", r.Method, r.URL.Path)
		}
		got, _ = io.ReadAll(r.Body)
		header = r.Header.Clone()
		_, _ = w.Write(mustRead(t, "seed_success.json"))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL + "/prefix/", Username: "123123123", APIKey: "testapikey"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(t.Context(), providers.Query{Reference: "091283746520"}); err != nil {
		t.Fatal(err)
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if ae := header.Get("Accept-Encoding"); ae != "identity" {
		t.Errorf("Accept-Encoding = %q, want identity: the parsers read uncompressed bodies", ae)
	}
	golden(t, "checkstatus_request.golden.json", got)
}

func TestSeedResponses(t *testing.T) {
	tests := []struct {
		file string
		want providers.Result
	}{
		{"seed_success.json", providers.Result{
			State: providers.StateSuccess, Status: "1", Code: "00", Message: "PAYMENT SUCCESS",
			TransactionID: "9732795", Amount: "137110", Currency: "IDR",
			Details: json.RawMessage(`{"admin":7500,"datetime":"20180803171608","hp":"6391601202","nominal":129610,"noref":"1609626","period":"201405,201407","product_code":"TELKOMPSTN","tr_name":"JAORAH"}`),
		}},
		{"seed_pending.json", providers.Result{
			State: providers.StatePending, Status: "3", Code: "39", Message: "PENDING / TRANSAKSI SEDANG DIPROSES",
			TransactionID: "47794331", Amount: "52370", Currency: "IDR",
			Details: json.RawMessage(`{"admin":2500,"hp":"6391601207","nominal":49870,"period":"202103","product_code":"TELKOMPSTN","tr_name":"CATH"}`),
		}},
		{"seed_failed.json", providers.Result{
			State: providers.StateFailed, Status: "2", Code: "37", Message: "PEMBAYARAN GAGAL",
			TransactionID: "47794331", Amount: "52370", Currency: "IDR",
			Details: json.RawMessage(`{"admin":2500,"datetime":"20210316174828","hp":"6391601207","nominal":49870,"noref":"","period":"202103","product_code":"TELKOMPSTN","tr_name":"CATH"}`),
		}},
		{"seed_not_received.json", providers.Result{
			State: providers.StateFailed, Status: "0", Code: "42", Message: "REQUEST PEMBAYARAN BELUM DITERIMA",
			TransactionID: "9732795", Amount: "137110", Currency: "IDR",
			Details: json.RawMessage(`{"admin":7500,"datetime":"20180803171608","hp":"6391601202","nominal":129610,"period":"201405,201407","product_code":"TELKOMPSTN","tr_name":"JAORAH"}`),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := parse(mustRead(t, tc.file), 200, "091283746520")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			providertest.CheckDetails(t, got.Details)
		})
	}
}

// documented lists every postpaid response code of IAK's response-code page
// with what a checkstatus answer carrying it must mean. It is written out
// separately from the codes map so that a changed row shows here.
var documented = []struct {
	code  string
	state providers.State
	cause error
	kind  providers.Kind
}{
	{"00", providers.StateSuccess, nil, 0},
	{"01", providers.StateFailed, nil, 0},
	{"02", providers.StateFailed, nil, 0},
	{"03", 0, providers.ErrRejected, providers.BadRequest},
	{"04", providers.StateFailed, nil, 0},
	{"05", providers.StatePending, nil, 0},
	{"06", providers.StateNotFound, nil, 0},
	{"07", providers.StateFailed, nil, 0},
	{"08", providers.StateFailed, nil, 0},
	{"09", providers.StateFailed, nil, 0},
	{"10", providers.StateFailed, nil, 0},
	{"11", 0, providers.ErrUnknownCode, providers.Retryable},
	{"13", providers.StateFailed, nil, 0},
	{"14", providers.StateFailed, nil, 0},
	{"15", providers.StateFailed, nil, 0},
	{"16", providers.StateFailed, nil, 0},
	{"17", providers.StateFailed, nil, 0},
	{"20", providers.StateFailed, nil, 0},
	{"30", providers.StateFailed, nil, 0},
	{"31", providers.StateFailed, nil, 0},
	{"32", providers.StateFailed, nil, 0},
	{"33", providers.StateFailed, nil, 0},
	{"34", providers.StateFailed, nil, 0},
	{"35", providers.StateFailed, nil, 0},
	{"36", providers.StateFailed, nil, 0},
	{"37", providers.StateFailed, nil, 0},
	{"38", providers.StateFailed, nil, 0},
	{"39", providers.StatePending, nil, 0},
	{"40", providers.StateFailed, nil, 0},
	{"41", providers.StateFailed, nil, 0},
	{"42", providers.StateFailed, nil, 0},
	{"91", 0, providers.ErrUnavailable, providers.Retryable},
	{"92", 0, providers.ErrUnavailable, providers.Retryable},
	{"93", providers.StateFailed, nil, 0},
	{"94", 0, providers.ErrAuth, providers.Retryable},
	{"100", 0, providers.ErrAuth, providers.Retryable},
	{"101", 0, providers.ErrProtocol, providers.Retryable},
	{"102", 0, providers.ErrAuth, providers.Retryable},
	{"103", 0, providers.ErrUnavailable, providers.Retryable},
	{"105", 0, providers.ErrUnavailable, providers.Retryable},
	{"106", providers.StateFailed, nil, 0},
	{"107", 0, providers.ErrProtocol, providers.Retryable},
	{"108", providers.StateFailed, nil, 0},
	{"109", 0, providers.ErrUnavailable, providers.Retryable},
	{"110", 0, providers.ErrUnavailable, providers.Retryable},
	{"117", 0, providers.ErrProtocol, providers.Retryable},
	{"118", 0, providers.ErrAuth, providers.Retryable},
	{"201", providers.StatePending, nil, 0},
}

func TestCodeTable(t *testing.T) {
	var listed []string
	for _, row := range documented {
		listed = append(listed, row.code)
		t.Run(row.code, func(t *testing.T) {
			status := map[providers.State]int{providers.StateSuccess: 1, providers.StateFailed: 2, providers.StatePending: 3}[row.state]
			body, _ := json.Marshal(map[string]any{"data": map[string]any{
				"ref_id": "R1", "status": status, "response_code": row.code, "message": "M", "tr_id": 5, "price": 1000,
			}})
			res, err := parse(body, 200, "R1")
			if row.cause == nil {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if res.State != row.state {
					t.Fatalf("state = %v, want %v", res.State, row.state)
				}
				return
			}
			if !errors.Is(err, row.cause) {
				t.Fatalf("error = %v, want cause %v", err, row.cause)
			}
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != row.kind || pe.Code != row.code || pe.Message != "M" {
				t.Fatalf("error = %#v, want kind %v with code %s and message", pe, row.kind, row.code)
			}
		})
	}
	var mapped []string
	for code := range codes {
		mapped = append(mapped, code)
	}
	slices.Sort(listed)
	slices.Sort(mapped)
	if diff := cmp.Diff(listed, mapped); diff != "" {
		t.Errorf("codes map and documented table differ (-documented +map):\n%s", diff)
	}
}

func TestUntrustworthyAnswers(t *testing.T) {
	tests := []struct {
		name string
		body string
		want error
	}{
		{"success code with failed status", `{"data":{"ref_id":"R1","status":2,"response_code":"00"}}`, providers.ErrBadResponse},
		{"success code without status", `{"data":{"ref_id":"R1","response_code":"00"}}`, providers.ErrBadResponse},
		{"success status with failed code", `{"data":{"ref_id":"R1","status":1,"response_code":"37"}}`, providers.ErrBadResponse},
		{"success status with pending code", `{"data":{"ref_id":"R1","status":1,"response_code":"39"}}`, providers.ErrBadResponse},
		{"in-process status with failed code", `{"data":{"ref_id":"R1","status":3,"response_code":"37"}}`, providers.ErrBadResponse},
		{"answer about another reference", `{"data":{"ref_id":"R2","status":1,"response_code":"00"}}`, providers.ErrBadResponse},
		{"numeric response code", `{"data":{"ref_id":"R1","status":1,"response_code":0}}`, providers.ErrUnknownCode},
		{"no data", `{"meta":[]}`, providers.ErrBadResponse},
		{"data is a string", `{"data":"PAYMENT SUCCESS"}`, providers.ErrBadResponse},
		{"empty response code", `{"data":{"ref_id":"R1","status":1,"response_code":""}}`, providers.ErrBadResponse},
		{"unknown code", `{"data":{"ref_id":"R1","status":1,"response_code":"999"}}`, providers.ErrUnknownCode},
		{"repeated response code", `{"data":{"ref_id":"R1","status":1,"response_code":"37","response_code":"00"}}`, providers.ErrBadResponse},
		{"repeated data", `{"data":{"ref_id":"R1","status":2,"response_code":"37"},"data":{"status":1,"response_code":"00"}}`, providers.ErrBadResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse([]byte(tc.body), 200, "R1")
			if err == nil {
				t.Fatal("parse accepted an answer it must not trust")
			}
			if providers.KindOf(err) != providers.Retryable {
				t.Errorf("kind = %v, want retryable", providers.KindOf(err))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want cause %v", err, tc.want)
			}
		})
	}
}

func TestTolerantTypes(t *testing.T) {
	// Status as a string, tr_id as a string, amounts as strings, desc "".
	body := `{"data":{"ref_id":"R1","status":"1","response_code":"00","tr_id":"77","price":"1500","nominal":"1000","admin":500,"desc":""},"meta":[]}`
	res, err := parse([]byte(body), 200, "R1")
	if err != nil {
		t.Fatal(err)
	}
	if res.State != providers.StateSuccess || res.TransactionID != "77" || res.Amount != "1500" {
		t.Errorf("result = %+v", res)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{BaseURL: "ftp://x"}, http.DefaultClient)
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{"base URL", "username", "API key"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		Provider: Name,
		New: func(base string, c sim.Credentials, hc *http.Client) (providers.Provider, error) {
			return New(Config{BaseURL: base, Username: c.IAKUsername, APIKey: providers.Secret(c.IAKAPIKey)}, hc)
		},
		WrongCredentials: func(c sim.Credentials) sim.Credentials {
			c.IAKAPIKey += "-wrong"
			return c
		},
	})
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"seed_success.json", "seed_pending.json", "seed_failed.json", "seed_not_received.json"} {
		f.Add(mustRead(f, name))
	}
	f.Add([]byte(`{"data":{"status":"1","response_code":"00"}}`))
	f.Add([]byte(`{"data":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := parse(body, 200, "091283746520")
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *providers.Error", err)
			}
			return
		}
		if res.State == providers.StateSuccess && (res.Code != "00" || res.Status != "1") {
			t.Fatalf("success from code %q status %q", res.Code, res.Status)
		}
		if res.State < providers.StatePending || res.State > providers.StateNotFound {
			t.Fatalf("invalid state %d", res.State)
		}
		providertest.CheckDetails(t, res.Details)
	})
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}
