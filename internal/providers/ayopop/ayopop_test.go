package ayopop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestToken(t *testing.T) {
	// providers.md §4.2, computed independently of this code: the vector
	// with the header {"alg":"HS256","typ":"JWT"}, the one token writes.
	// Its payload segment equals the one in seed 000's sample token.
	const want = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" +
		".eyJwYXJ0bmVySWQiOiJVUDB0NmZCNHFaN2oiLCJyZWZOdW1iZXIiOiJwcmR0ZXN0dGQxMTM0NSJ9" +
		".-dCiXD5Ie8aN8dLmn6lp3QWJjfkvZWfC1_qB_Pqk_SI"
	got := token("test-api-secret", []byte(`{"partnerId":"UP0t6fB4qZ7j","refNumber":"prdtesttd11345"}`))
	if got != want {
		t.Errorf("token =\n%s\nwant\n%s", got, want)
	}
}

// capturedRequest is what the golden files hold: the request as the
// server saw it, with the TOKEN's header and claims decoded as sent.
type capturedRequest struct {
	Method      string            `json:"method"`
	Path        string            `json:"path"`
	Headers     map[string]string `json:"headers"`
	Body        string            `json:"body"`
	TokenHeader string            `json:"token_header"`
	TokenClaims string            `json:"token_claims"`
}

func TestRequestGolden(t *testing.T) {
	const secret = "test-api-secret"
	tests := []struct {
		version, golden, path string
	}{
		{"", "status_request_v2.golden.json", "/prefix/api/v2/bill/status"},
		{"1.0", "status_request_v1.golden.json", "/prefix/api/v1/bill/status"},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			var got capturedRequest
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got = capturedRequest{Method: r.Method, Path: r.URL.Path, Body: string(body), Headers: map[string]string{}}
				for _, h := range []string{"KEY", "TOKEN", "VERSION", "Content-Type", "Accept", "Accept-Encoding"} {
					got.Headers[h] = r.Header.Get(h)
				}
				_, _ = w.Write(mustRead(t, "seed_callback_success.json"))
			}))
			defer srv.Close()
			c, err := New(Config{BaseURL: srv.URL + "/prefix/", APIKey: "UP0t6fB4qZ7j", APISecret: secret, Version: tc.version}, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Status(t.Context(), providers.Query{Reference: "cropdrdevtest1"}); err != nil {
				t.Fatal(err)
			}
			if got.Path != tc.path {
				t.Errorf("path = %q, want %q", got.Path, tc.path)
			}
			// Check the signature the way a server would, over the received
			// header.payload bytes, without the code under test.
			parts := strings.Split(got.Headers["TOKEN"], ".")
			if len(parts) != 3 {
				t.Fatalf("TOKEN has %d segments, want 3", len(parts))
			}
			mac := hmac.New(sha256.New, []byte(secret))
			mac.Write([]byte(parts[0] + "." + parts[1]))
			if want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); parts[2] != want {
				t.Errorf("TOKEN signature %q, want %q", parts[2], want)
			}
			got.TokenHeader, got.TokenClaims = decodeSegment(t, parts[0]), decodeSegment(t, parts[1])
			if got.TokenClaims != got.Body {
				t.Errorf("claims %s differ from body %s", got.TokenClaims, got.Body)
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, append(out, '\n'))
		})
	}
}

func decodeSegment(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment %q is not unpadded base64url: %v", seg, err)
	}
	return string(b)
}

func TestSeedResponses(t *testing.T) {
	tests := []struct {
		file, reference string
		want            providers.Result
	}{
		{"seed_callback_success.json", "cropdrdevtest1", providers.Result{
			State: providers.StateSuccess, Status: "true", Code: "0", Message: "Your transaction was successful",
			TransactionID: "112247", Amount: "1000", Currency: "IDR",
			Details: providertest.DetailsJSON(map[string]any{
				"message_id": "Transaksi Anda Telah Berhasil", "accountNumber": "0814111111200",
				"productCode": "product-code", "productName": "product-name", "category": "Pulsa", "denom": "",
				"token": "1908202085666581", "totalAdmin": json.Number("0"), "processingFee": json.Number("0"),
				"customerDetails": []map[string]string{
					{"key": "Nama Pelanggan", "value": "N/A"},
					{"key": "Tanggal & Waktu Pembayaran", "value": "17 Sep 2021 | 12:30"},
					{"key": "Nomor HP", "value": "0814111111200"},
				},
				"productDetails": []map[string]string{{"key": "Serial Nomor", "value": "1908202085666581"}},
			}),
		}},
		{"seed_payment_processing.json", "TESTIdihomeV2Stage", providers.Result{
			State: providers.StatePending, Status: "true", Code: "299", Message: "Your transaction is processing",
			TransactionID: "220974", Amount: "747250", Currency: "IDR",
			Details: providertest.DetailsJSON(map[string]any{
				"message_id": "Transaksi sedang dalam proses", "accountNumber": "123223345",
				"productCode": "product-code", "productName": "product-name", "category": "Internet dan TV Kabel",
				"denom": "", "token": "", "customerName": "N/A", "validity": "",
				"totalAdmin": json.Number("2500"), "processingFee": json.Number("0"),
			}),
		}},
		{"seed_dev_success.json", "HNAY0020200604000067000000006720200604150658000067", providers.Result{
			State: providers.StateSuccess, Status: "true", Code: "0", Message: "Your transaction was successful",
			TransactionID: "9508", Amount: "10000", Currency: "IDR",
			Details: providertest.DetailsJSON(map[string]any{
				"message_id": "Your transaction was successful", "accountNumber": "test@gmail.com",
				"productCode": "GC10", "productName": "Ayopop Gift Card Rp10.000", "category": "Voucher Digital",
				"token": "Test053", "totalAdmin": json.Number("0"),
			}),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := parse(mustRead(t, tc.file), 200, tc.reference)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

// documented lists what a status answer with each responseCode must mean:
// Ayopop's documented codes (0, 299, 300), the edges of every range
// providers.md §1.5 gives, and our not-found choice. It is written out
// separately from classify so that a changed boundary shows here.
var documented = []struct {
	rc    string
	state providers.State
	cause error
}{
	{"-100", 0, providers.ErrUnknownCode},
	{"-1", 0, providers.ErrUnknownCode},
	{"0", providers.StateSuccess, nil},
	{"1", providers.StateSuccess, nil},
	{"99", providers.StateSuccess, nil},
	{"100", providers.StateFailed, nil},
	{"150", providers.StateFailed, nil},
	{"199", providers.StateFailed, nil},
	{"200", providers.StatePending, nil},
	{"201", providers.StatePending, nil},
	{"298", providers.StatePending, nil},
	{"299", providers.StatePending, nil},
	{"300", 0, providers.ErrProtocol},
	{"301", 0, providers.ErrRejected},
	{"397", 0, providers.ErrRejected},
	{"398", providers.StateNotFound, nil},
	{"399", 0, providers.ErrRejected},
	{"400", 0, providers.ErrUnknownCode},
	{"401", 0, providers.ErrUnknownCode},
	{"404", 0, providers.ErrUnknownCode},
	{"407", 0, providers.ErrUnknownCode},
	{"408", 0, providers.ErrUnavailable},
	{"429", 0, providers.ErrUnknownCode},
	{"499", 0, providers.ErrUnknownCode},
	{"500", 0, providers.ErrUnavailable},
	{"502", 0, providers.ErrUnavailable},
	{"504", 0, providers.ErrUnavailable},
	{"599", 0, providers.ErrUnavailable},
	{"600", 0, providers.ErrUnknownCode},
	{"777", 0, providers.ErrUnknownCode},
	{"99999999999999999999999", 0, providers.ErrUnknownCode},
	{"-99999999999999999999999", 0, providers.ErrUnknownCode},
}

func TestCodeTable(t *testing.T) {
	for _, row := range documented {
		t.Run(row.rc, func(t *testing.T) {
			// A consistent answer: success true except where the code says
			// the payment failed or is unknown.
			success := row.state != providers.StateFailed && row.state != providers.StateNotFound && row.cause == nil
			body := fmt.Sprintf(`{"responseCode":%s,"success":%t,"message":{"ID":"P","EN":"M"},"data":{"refNumber":"R1","transactionId":5,"amount":1000}}`, row.rc, success)
			res, err := parse([]byte(body), 200, "R1")
			if row.cause == nil {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if res.State != row.state || res.Code != row.rc {
					t.Fatalf("state %v code %q, want %v %q", res.State, res.Code, row.state, row.rc)
				}
				return
			}
			if !errors.Is(err, row.cause) {
				t.Fatalf("error = %v, want cause %v", err, row.cause)
			}
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != providers.Retryable || pe.Code != row.rc || pe.Message != "M" {
				t.Fatalf("error = %#v, want retryable with code %s and message M", pe, row.rc)
			}
		})
	}
}

func TestUntrustworthyAnswers(t *testing.T) {
	tests := []struct {
		name string
		body string
		want error
	}{
		{"success code with success false", `{"responseCode":0,"success":false,"data":{"refNumber":"R1"}}`, providers.ErrBadResponse},
		{"success code without success", `{"responseCode":0,"data":{"refNumber":"R1"}}`, providers.ErrBadResponse},
		{"success code with success as a string", `{"responseCode":0,"success":"true","data":{"refNumber":"R1"}}`, providers.ErrBadResponse},
		{"success code with success null", `{"responseCode":0,"success":null}`, providers.ErrBadResponse},
		{"failed code with success true", `{"responseCode":101,"success":true,"data":{"refNumber":"R1"}}`, providers.ErrBadResponse},
		{"failed code without success", `{"responseCode":101,"data":{"refNumber":"R1"}}`, providers.ErrBadResponse},
		{"not-found code with success true", `{"responseCode":398,"success":true,"data":{}}`, providers.ErrBadResponse},
		{"success about another reference", `{"responseCode":0,"success":true,"data":{"refNumber":"R2"}}`, providers.ErrBadResponse},
		{"success about an empty reference", `{"responseCode":0,"success":true,"data":{"refNumber":""}}`, providers.ErrBadResponse},
		{"failure about another reference", `{"responseCode":101,"success":false,"data":{"refNumber":"R2"}}`, providers.ErrBadResponse},
		{"pending about another reference", `{"responseCode":299,"success":true,"data":{"refNumber":"R2"}}`, providers.ErrBadResponse},
		{"response code as a string", `{"responseCode":"0","success":true,"data":{"refNumber":"R1"}}`, providers.ErrBadResponse},
		{"response code with a fraction", `{"responseCode":0.0,"success":true}`, providers.ErrBadResponse},
		{"response code with an exponent", `{"responseCode":0e1,"success":true}`, providers.ErrBadResponse},
		{"response code null", `{"responseCode":null,"success":true}`, providers.ErrBadResponse},
		{"response code missing", `{"success":true,"data":{"refNumber":"R1"}}`, providers.ErrBadResponse},
		{"response code under another case", `{"ResponseCode":0,"success":true,"data":{"refNumber":"R1"}}`, providers.ErrBadResponse},
		{"success under another case", `{"responseCode":0,"Success":true,"data":{"refNumber":"R1"}}`, providers.ErrBadResponse},
		{"repeated response code, the last a string", `{"responseCode":0,"responseCode":"0","success":true}`, providers.ErrBadResponse},
		{"repeated success, the last false", `{"responseCode":0,"success":true,"success":false}`, providers.ErrBadResponse},
		{"repeated refNumber, the last another", `{"responseCode":0,"success":true,"data":{"refNumber":"R1","refNumber":"R2"}}`, providers.ErrBadResponse},
		{"data is a list", `{"responseCode":0,"success":true,"data":["R1","SUCCESS"]}`, providers.ErrBadResponse},
		{"body is a list", `[{"responseCode":0,"success":true}]`, providers.ErrBadResponse},
		{"body is null", `null`, providers.ErrBadResponse},
		{"repeated members, the last a consistent success", `{"responseCode":101,"responseCode":0,"success":false,"success":true,"data":{"refNumber":"R2","refNumber":"R1"}}`, providers.ErrBadResponse},
		{"a repeated member in a message", `{"responseCode":0,"success":true,"message":{"EN":"Second","EN":"Last"}}`, providers.ErrBadResponse},
		{"a repeated member in a list item", `{"responseCode":0,"success":true,"data":{"productDetails":[{"key":"B","key":"C","value":"2"}]}}`, providers.ErrBadResponse},
		{"a repeated member nobody reads", `{"responseCode":0,"success":true,"extra":{"x":1,"x":2}}`, providers.ErrBadResponse},
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
	tests := []struct {
		name string
		body string
		want providers.Result
	}{
		{"ids and amounts as strings, message only in Indonesian",
			`{"responseCode":0,"success":true,"message":{"ID":"Berhasil"},"data":{"refNumber":"R1","transactionId":"T-77","amount":"1500","totalAdmin":"500","denom":5}}`,
			providers.Result{State: providers.StateSuccess, Status: "true", Code: "0", Message: "Berhasil",
				TransactionID: "T-77", Amount: "1500", Currency: "IDR",
				Details: providertest.DetailsJSON(map[string]any{"message_id": "Berhasil", "totalAdmin": json.Number("500"), "denom": "5"})}},
		{"message as a plain string, no data",
			`{"responseCode":0,"success":true,"message":"OK"}`,
			providers.Result{State: providers.StateSuccess, Status: "true", Code: "0", Message: "OK", Currency: "IDR"}},
		{"unusable optional fields are dropped",
			`{"responseCode":0,"success":true,"message":[1],"data":{"refNumber":null,"transactionId":{},"amount":"12,5","token":null,"customerDetails":"none","productDetails":[{"key":"SN","value":{}},{"key":"Periode","value":202611}]}}`,
			providers.Result{State: providers.StateSuccess, Status: "true", Code: "0", Currency: "IDR",
				Details: providertest.DetailsJSON(map[string]any{"productDetails": []map[string]string{{"key": "Periode", "value": "202611"}}})}},
		{"pending whatever the success flag says",
			`{"responseCode":201,"success":false,"data":{"refNumber":"R1"}}`,
			providers.Result{State: providers.StatePending, Status: "false", Code: "201", Currency: "IDR"}},
		{"member names match exactly",
			`{"responseCode":0,"success":true,"message":{"en":"Lower","ID":"Berhasil"},"data":{"refNumber":"R1","RefNumber":"R2","Amount":9,"customerDetails":[{"Key":"K1","value":"V1"},{"key":"K2","Value":"V2"},{"key":"K3","value":"V3"}]}}`,
			providers.Result{State: providers.StateSuccess, Status: "true", Code: "0", Message: "Berhasil", Currency: "IDR",
				Details: providertest.DetailsJSON(map[string]any{"message_id": "Berhasil", "customerDetails": []map[string]string{{"key": "K3", "value": "V3"}}})}},
		{"optional members of a wrong type are left out",
			`{"responseCode":0,"success":true,"message":{"ID":["x"],"EN":{"a":1}},"data":{"refNumber":"R1","transactionId":true,"accountNumber":[],"amount":{"v":1},"totalAdmin":"abc","processingFee":false,"customerName":{},"validity":null,"customerDetails":{"key":"K","value":"V"},"productDetails":7}}`,
			providers.Result{State: providers.StateSuccess, Status: "true", Code: "0", Currency: "IDR"}},
		{"a list with an item that is not an object is left out whole",
			`{"responseCode":0,"success":true,"data":{"customerDetails":[null,{"key":"K","value":"V"}],"productDetails":[{"key":"SN","value":"1"},"SN"]}}`,
			providers.Result{State: providers.StateSuccess, Status: "true", Code: "0", Currency: "IDR",
				Details: providertest.DetailsJSON(map[string]any{"customerDetails": []map[string]string{{"key": "K", "value": "V"}}})}},
		{"invalid UTF-8 in a nested member is replaced",
			"{\"responseCode\":0,\"success\":true,\"message\":{\"EN\":\"bad\xffbyte\"},\"data\":{\"productDetails\":[{\"key\":\"S\xfeN\",\"value\":\"1\"}]}}",
			providers.Result{State: providers.StateSuccess, Status: "true", Code: "0", Message: "bad\ufffdbyte", Currency: "IDR",
				Details: providertest.DetailsJSON(map[string]any{"productDetails": []map[string]string{{"key": "S\ufffdN", "value": "1"}}})}},
		{"negative zero is zero",
			`{"responseCode":-0,"success":true}`,
			providers.Result{State: providers.StateSuccess, Status: "true", Code: "0", Currency: "IDR"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse([]byte(tc.body), 200, "R1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{BaseURL: "ftp://x", Version: "3.0"}, http.DefaultClient)
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{"base URL", "API key", "API secret", "version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}

	_, err = New(Config{BaseURL: DevURL, APIKey: "key\r\nX-Evil: 1", APISecret: "s"}, http.DefaultClient)
	if err == nil || !strings.Contains(err.Error(), "API key") {
		t.Errorf("New accepted an API key that cannot be a header value (err %v)", err)
	}
	if err != nil && strings.Contains(err.Error(), "Evil") {
		t.Errorf("error %q quotes the API key", err)
	}

	for _, v := range []string{"", Version2, Version1} {
		if _, err := New(Config{BaseURL: DevURL, APIKey: "k", APISecret: "s", Version: v}, http.DefaultClient); err != nil {
			t.Errorf("version %q: %v", v, err)
		}
	}
}

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		Provider: Name,
		New:      newFromCredentials,
		WrongCredentials: func(c sim.Credentials) sim.Credentials {
			c.AyopopSecret += "-wrong"
			return c
		},
	})
}

func newFromCredentials(base string, c sim.Credentials, hc *http.Client) (providers.Provider, error) {
	return New(Config{BaseURL: base, APIKey: providers.Secret(c.AyopopKey), APISecret: providers.Secret(c.AyopopSecret)}, hc)
}

// TestStatusConcurrent makes calls from several goroutines at once against
// the simulator, which checks each TOKEN and that its claims are the body:
// no two calls may mix (run it with -race).
func TestStatusConcurrent(t *testing.T) {
	creds := providertest.TestCredentials()
	srv := httptest.NewServer(sim.New(creds))
	defer srv.Close()
	c, err := newFromCredentials(srv.URL+"/ayopop", creds, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, calls = 8, 25
	errs := make(chan error, goroutines*calls)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				ref := fmt.Sprintf("success#concurrent-%d-%d", g, i)
				res, err := c.Status(t.Context(), providers.Query{Reference: ref})
				if err == nil && res.State != providers.StateSuccess {
					err = fmt.Errorf("state %v", res.State)
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", ref, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNoCredentialsInErrors covers the API key too, which the conformance
// suite does not count as a secret: here it is one.
func TestNoCredentialsInErrors(t *testing.T) {
	creds := providertest.TestCredentials()
	s := sim.New(creds)
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, wrong := range []bool{false, true} {
		c := creds
		if wrong {
			c.AyopopSecret += "-wrong"
		}
		client, err := newFromCredentials(srv.URL+"/ayopop", c, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []sim.Outcome{sim.UnknownCode, sim.AuthError, sim.WrongShape, sim.ServerError, sim.Garbage} {
			ref := fmt.Sprintf("secrets-%s-%t", o, wrong)
			s.Script(sim.Ayopop, ref, o)
			_, err := client.Status(t.Context(), providers.Query{Reference: ref})
			if err == nil {
				t.Fatalf("%s: no error", o)
			}
			providertest.AssertNoSecrets(t, []string{creds.AyopopKey, creds.AyopopSecret},
				err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"seed_callback_success.json", "seed_payment_processing.json", "seed_dev_success.json"} {
		f.Add(mustRead(f, name))
	}
	f.Add([]byte(`{"responseCode":101,"success":false,"message":{"ID":"Gagal","EN":"Failed"},"data":{"refNumber":"cropdrdevtest1"}}`))
	f.Add([]byte(`{"responseCode":398,"success":false,"data":{}}`))
	f.Add([]byte(`{"responseCode":"0","success":true}`))
	f.Add([]byte(`{"responseCode":0,"success":true,"data":null}`))
	f.Add([]byte(`{"responseCode":101,"responseCode":0,"success":false,"success":true,"message":{"EN":[1],"ID":"x"},"data":{"refNumber":"cropdrdevtest1","customerDetails":[null,{"key":"k","value":2}],"productDetails":[1]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := parse(body, 200, "cropdrdevtest1")
		if err == nil {
			providertest.CheckDetails(t, res.Details)
		}
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *providers.Error", err)
			}
			if pe.Kind != providers.Retryable {
				t.Fatalf("kind %v: no response body may end a check for good", pe.Kind)
			}
			return
		}
		switch res.State {
		case providers.StateSuccess:
			if res.Status != "true" || len(res.Code) > 2 || strings.HasPrefix(res.Code, "-") {
				t.Fatalf("success from code %q status %q", res.Code, res.Status)
			}
		case providers.StateFailed:
			if res.Status != "false" || len(res.Code) != 3 || res.Code[0] != '1' {
				t.Fatalf("failed from code %q status %q", res.Code, res.Status)
			}
		case providers.StateNotFound:
			if res.Status != "false" || res.Code != "398" {
				t.Fatalf("not found from code %q status %q", res.Code, res.Status)
			}
		case providers.StatePending:
			if len(res.Code) != 3 || res.Code[0] != '2' {
				t.Fatalf("pending from code %q", res.Code)
			}
		default:
			t.Fatalf("invalid state %d", res.State)
		}
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
