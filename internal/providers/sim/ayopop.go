package sim

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"

	"github.com/golang-jwt/jwt/v5"
)

// ayopopNotFoundCode is the responseCode for a refNumber Ayopop does not
// know. Ayopop documents none; 398 is the client's choice, argued in
// internal/providers/ayopop/codes.go and restated here because the
// simulators are written independently of the clients.
const ayopopNotFoundCode = 398

// ayopopVersions pairs the path segment with the VERSION header every
// sample sends with it.
var ayopopVersions = map[string]string{"v1": "1.0", "v2": "2.0"}

// ayopopProduct is one product the simulator's transactions are for.
type ayopopProduct struct {
	code, name, category string
	price, admin         uint64
	token                func(ref string) string // the delivered voucher, serial or PLN token
}

var ayopopProducts = []ayopopProduct{
	{"PLNPRE50", "PLN Token 50.000", "PLN Prabayar", 50_000, 2_500, func(ref string) string {
		// 20 digits, more than a uint64 holds.
		return strconv.FormatUint(fact(ref, "ayopop-pln-a", 1e9, 1e10-1), 10) +
			strconv.FormatUint(fact(ref, "ayopop-pln-b", 1e9, 1e10-1), 10)
	}},
	{"PPLSIND12", "Indosat Pulsa 12.000", "Pulsa", 12_000, 0, func(ref string) string {
		return strconv.FormatUint(fact(ref, "ayopop-sn", 1e15, 1e16-1), 10)
	}},
	{"PVDGAF50", "Voucher Alfamart 50.000", "Voucher Digital", 50_000, 0, func(ref string) string {
		return "AF" + strconv.FormatUint(fact(ref, "ayopop-voucher", 1e9, 1e10-1), 10)
	}},
}

// serveAyopop answers Ayopop's status call the way seed 000 and
// providers.md §1 describe. Before a script step is used the request must
// authenticate: VERSION matching the path (else HTTP 400), KEY equal to the
// partner's API key and TOKEN an HS256 JWT over the received bytes, signed
// with the API secret, whose partnerId claim is KEY (else HTTP 401). The
// refNumber comes from the claims; a body, when sent, must hold exactly the
// claims (else HTTP 400). Ayopop documents no error answers; these carry
// the documented body shape with the HTTP status as responseCode, which is
// outside 0–399 and so never a verdict.
func (s *Server) serveAyopop(w http.ResponseWriter, r *http.Request) {
	version, ok := ayopopVersions[r.PathValue("version")]
	if !ok {
		ayopopError(w, http.StatusNotFound, "Halaman tidak ditemukan", "Not found")
		return
	}
	if r.Header.Get("VERSION") != version {
		ayopopError(w, http.StatusBadRequest, "Versi API tidak sesuai", "VERSION header does not match the path")
		return
	}
	claims, ok := s.ayopopClaims(r)
	if !ok {
		ayopopUnauthorized(w)
		return
	}
	ref, ok := claims["refNumber"].(string)
	if !ok || ref == "" {
		ayopopError(w, http.StatusBadRequest, "refNumber wajib diisi", "refNumber is required")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		ayopopError(w, http.StatusBadRequest, "Permintaan tidak valid", "Request body unreadable")
		return
	}
	if body = bytes.TrimSpace(body); len(body) > 0 {
		var params map[string]any
		if json.Unmarshal(body, &params) != nil || !reflect.DeepEqual(params, map[string]any(claims)) {
			ayopopError(w, http.StatusBadRequest, "Isi permintaan tidak sesuai dengan token", "Request body does not match the token")
			return
		}
	}

	o, ok := s.admit(w, r, Ayopop, ref)
	if !ok {
		return
	}
	if s.serveGeneric(w, r, o) {
		return
	}
	tx := ayopopTransaction(ref)
	switch o {
	case Success, BadSignature, Unsigned: // Ayopop signs no responses
		ayopopAnswer(w, 0, true, "Transaksi Anda Telah Berhasil", "Your transaction was successful", tx)
	case Pending:
		tx["token"] = ""
		ayopopAnswer(w, 299, true, "Transaksi sedang dalam proses", "Your transaction is processing", tx)
	case Failed:
		tx["token"] = ""
		ayopopAnswer(w, 101, false, "Transaksi Anda gagal", "Your transaction failed", tx)
	case NotFound, NotReceived:
		ayopopAnswer(w, ayopopNotFoundCode, false, "Transaksi tidak ditemukan", "Transaction not found", map[string]any{})
	case UnknownCode:
		ayopopAnswer(w, 777, false, "Kode tidak dikenal", "Unknown code", map[string]any{})
	case AuthError:
		ayopopUnauthorized(w)
	case WrongShape:
		writeJSON(w, http.StatusOK, map[string]any{
			"responseCode": 0, "success": true,
			"message": map[string]any{"ID": "Transaksi Anda Telah Berhasil", "EN": "Your transaction was successful"},
			"data":    []any{ref, "SUCCESS"},
		})
	}
}

// ayopopClaims authenticates r and returns the token's claims.
func (s *Server) ayopopClaims(r *http.Request) (jwt.MapClaims, bool) {
	key := r.Header.Get("KEY")
	if key == "" || subtle.ConstantTimeCompare([]byte(key), []byte(s.creds.AyopopKey)) != 1 {
		return nil, false
	}
	claims := jwt.MapClaims{}
	// jwt.ParseWithClaims verifies the signature over the received
	// header.payload bytes; exp and nbf are checked only when present.
	_, err := jwt.ParseWithClaims(r.Header.Get("TOKEN"), claims, func(*jwt.Token) (any, error) {
		if s.creds.AyopopSecret == "" {
			return nil, errors.New("no secret configured")
		}
		return []byte(s.creds.AyopopSecret), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(s.now))
	if err != nil {
		return nil, false
	}
	partner, ok := claims["partnerId"].(string)
	return claims, ok && partner == key
}

// ayopopTransaction returns the data of a transaction for ref, stable per
// reference.
func ayopopTransaction(ref string) map[string]any {
	p := ayopopProducts[fact(ref, "ayopop-product", 0, uint64(len(ayopopProducts)-1))]
	account := "08" + strconv.FormatUint(fact(ref, "ayopop-account", 1e9, 1e10-1), 10)
	return map[string]any{
		"refNumber":     ref,
		"transactionId": fact(ref, "ayopop-tx", 100_000, 9_999_999),
		"accountNumber": account,
		// amount is what the partner pays: the price plus totalAdmin, as in
		// Ayopop's samples.
		"amount":        p.price + p.admin,
		"totalAdmin":    p.admin,
		"processingFee": 0,
		"denom":         "",
		"productCode":   p.code,
		"productName":   p.name,
		"category":      p.category,
		"token":         p.token(ref),
		"customerName":  "N/A",
		"validity":      "",
		"customerDetails": []map[string]any{
			{"key": "Nama Pelanggan", "value": "N/A"},
			{"key": "Nomor Pelanggan", "value": account},
		},
		"billDetails":    []any{},
		"productDetails": []map[string]any{{"key": "Nama Produk", "value": p.name}},
		"extraFields":    []any{},
	}
}

func ayopopAnswer(w http.ResponseWriter, rc int, success bool, id, en string, data map[string]any) {
	writeJSON(w, http.StatusOK, ayopopBody(rc, success, id, en, data))
}

// ayopopBody is the structure of a status answer and of a callback.
func ayopopBody(rc int, success bool, id, en string, data map[string]any) map[string]any {
	return map[string]any{
		"responseCode": rc,
		"success":      success,
		"message":      map[string]any{"ID": id, "EN": en},
		"data":         data,
	}
}

func ayopopError(w http.ResponseWriter, status int, id, en string) {
	writeJSON(w, status, map[string]any{
		"responseCode": status,
		"success":      false,
		"message":      map[string]any{"ID": id, "EN": en},
		"data":         map[string]any{},
	})
}

func ayopopUnauthorized(w http.ResponseWriter) {
	ayopopError(w, http.StatusUnauthorized, "Akses ditolak: KEY atau TOKEN tidak valid", "Unauthorized: invalid KEY or TOKEN")
}
