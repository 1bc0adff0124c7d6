package sim

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
)

// serveIAK answers IAK postpaid checkstatus as seed 002 and IAK's response
// code page describe: HTTP 400 with error_details for missing fields,
// response_code 107 for an unreadable body, 101 for another command, 100
// for a wrong username or sign, otherwise the scripted outcome.
func (s *Server) serveIAK(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Commands string `json:"commands"`
		Username string `json:"username"`
		RefID    string `json:"ref_id"`
		Sign     string `json:"sign"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		iakCode(w, "", 0, "107", "XML / JSON FORMAT ERROR")
		return
	}
	if req.Commands == "" || req.Username == "" || req.RefID == "" || req.Sign == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"data":          map[string]any{"response_code": "", "message": "BAD REQUEST"},
			"error_details": "commands, username, ref_id and sign are required",
		})
		return
	}
	if req.Commands != "checkstatus" {
		iakCode(w, req.RefID, 0, "101", "INVALID COMMAND")
		return
	}
	sum := md5.Sum([]byte(s.creds.IAKUsername + s.creds.IAKAPIKey + "cs"))
	want := hex.EncodeToString(sum[:])
	if req.Username != s.creds.IAKUsername || subtle.ConstantTimeCompare([]byte(req.Sign), []byte(want)) != 1 {
		iakCode(w, req.RefID, 0, "100", "INVALID SIGNATURE")
		return
	}

	o, ok := s.admit(w, r, IAK, req.RefID)
	if !ok {
		return
	}
	if s.serveGeneric(w, r, o) {
		return
	}
	tx := s.iakTransaction(req.RefID)
	switch o {
	case Success, BadSignature, Unsigned:
		tx["status"], tx["response_code"], tx["message"] = 1, "00", "PAYMENT SUCCESS"
		tx["datetime"] = s.now().Format("20060102150405")
		tx["noref"] = strconv.FormatUint(fact(req.RefID, "iak-noref", 1_000_000, 9_999_999), 10)
	case Pending:
		tx["status"], tx["response_code"], tx["message"] = 3, "39", "PENDING / TRANSAKSI SEDANG DIPROSES"
	case Failed:
		tx["status"], tx["response_code"], tx["message"] = 2, "37", "PEMBAYARAN GAGAL"
		tx["datetime"] = s.now().Format("20060102150405")
		tx["noref"] = ""
	case NotReceived:
		tx["status"], tx["response_code"], tx["message"] = 0, "42", "REQUEST PEMBAYARAN BELUM DITERIMA"
	case NotFound:
		// Postpaid documents no dedicated code; 06 is "inquiry id not
		// found" and the closest match.
		iakCode(w, req.RefID, 2, "06", "INQUIRY ID NOT FOUND")
		return
	case UnknownCode:
		iakCode(w, req.RefID, 2, "777", "KODE TIDAK DIKENAL")
		return
	case AuthError:
		iakCode(w, req.RefID, 0, "100", "INVALID SIGNATURE")
		return
	case WrongShape:
		writeJSON(w, http.StatusOK, map[string]any{"data": []any{"00", "PAYMENT SUCCESS"}, "meta": []any{}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": tx, "meta": []any{}})
}

// iakTransaction returns the fields every checkstatus answer about a known
// transaction carries, stable per reference.
func (s *Server) iakTransaction(ref string) map[string]any {
	nominal := fact(ref, "iak-nominal", 10_000, 900_000)
	admin := 2500 * fact(ref, "iak-admin", 1, 3)
	price := nominal + admin
	return map[string]any{
		"tr_id":         fact(ref, "iak-tr", 1_000_000, 99_999_999),
		"code":          "TELKOMPSTN",
		"hp":            strconv.FormatUint(fact(ref, "iak-hp", 6_300_000_000, 6_399_999_999), 10),
		"tr_name":       "JAORAH",
		"period":        "202611",
		"nominal":       nominal,
		"admin":         admin,
		"price":         price,
		"selling_price": price - 1200,
		"balance":       996_850_749,
		"ref_id":        ref,
		"desc": map[string]any{
			"kode_area":      "0751",
			"jumlah_tagihan": 1,
		},
	}
}

func iakCode(w http.ResponseWriter, ref string, status int, rc, message string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"data": map[string]any{"ref_id": ref, "status": status, "response_code": rc, "message": message},
		"meta": []any{},
	})
}
