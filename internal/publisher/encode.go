package publisher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/statusbridge/statusbridge/internal/jsonquote"
)

// encoder is a reusable event buffer: every event is written into the
// same memory, so encoding one allocates next to nothing.
type encoder struct{ buf []byte }

var encoders = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 2048)} }}

// MarshalJSON encodes the event as Publish sends it, so encoding/json
// users (tests, tools) see the same bytes.
func (e Event) MarshalJSON() ([]byte, error) {
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	body, err := enc.encode(&e)
	return bytes.Clone(body), err
}

// encode writes ev as one compact JSON object: members in the order of
// the struct fields, map keys sorted, strings quoted by jsonquote (the
// bytes encoding/json writes, without its reflection and HTML escaping).
// The result aliases the encoder's buffer: it is valid until the
// encoder's next use.
func (e *encoder) encode(ev *Event) ([]byte, error) {
	w := writer{buf: e.buf[:0]}
	w.begin('{')
	w.str("specversion", ev.SpecVersion)
	w.str("id", ev.ID)
	w.str("source", ev.Source)
	w.str("type", ev.Type)
	w.strOmitEmpty("subject", ev.Subject)
	w.time("time", ev.Time)
	w.str("datacontenttype", ev.DataContentType)
	w.str("dataschema", ev.DataSchema)
	w.name("data")
	w.data(&ev.Data)
	w.end('}')
	e.buf = w.buf
	if w.err != nil {
		return nil, fmt.Errorf("encode event: %w", w.err)
	}
	return w.buf, nil
}

// writer appends JSON to buf. The structure is fixed by the code that
// calls it; what comes from requests and providers goes through
// jsonquote.Append or is checked to be a number, so nothing they send
// can change the structure.
type writer struct {
	buf   []byte
	comma bool // a value was written at this level: the next one needs a comma
	err   error
}

func (w *writer) sep() {
	if w.comma {
		w.buf = append(w.buf, ',')
	}
}

func (w *writer) begin(open byte) {
	w.sep()
	w.buf = append(w.buf, open)
	w.comma = false
}

func (w *writer) end(close byte) {
	w.buf = append(w.buf, close)
	w.comma = true
}

// name writes a member name the code fixes: lower-case ASCII letters and
// underscores, which need no escaping. The value written next needs no
// comma.
func (w *writer) name(n string) {
	w.sep()
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, n...)
	w.buf = append(w.buf, '"', ':')
	w.comma = false
}

// key writes a member name that came from a request or a provider.
func (w *writer) key(k string) {
	w.quote(k)
	w.buf = append(w.buf, ':')
	w.comma = false
}

// quote writes s as a JSON string (see jsonquote.Append).
func (w *writer) quote(s string) {
	w.sep()
	w.buf = jsonquote.Append(w.buf, s)
	w.comma = true
}

func (w *writer) str(n, v string) {
	w.name(n)
	w.quote(v)
}

func (w *writer) strOmitEmpty(n, v string) {
	if v != "" {
		w.str(n, v)
	}
}

// raw writes a literal the caller produced itself.
func (w *writer) raw(v []byte) {
	w.sep()
	w.buf = append(w.buf, v...)
	w.comma = true
}

// number writes a provider's number literal after checking it is one:
// text that is not would change the event's structure.
func (w *writer) number(n json.Number) {
	if n == "" {
		n = "0" // as encoding/json writes it
	}
	if !isNumber(string(n)) {
		if w.err == nil {
			w.err = fmt.Errorf("invalid number literal %q", n)
		}
		return
	}
	w.raw([]byte(n))
}

// time writes t as encoding/json does: RFC 3339 with the fraction's
// trailing zeros dropped.
func (w *writer) time(n string, t time.Time) {
	var b [48]byte
	w.name(n)
	w.raw(append(t.AppendFormat(append(b[:0], '"'), time.RFC3339Nano), '"'))
}

func (w *writer) data(d *Data) {
	w.begin('{')
	w.str("request_id", d.RequestID)
	w.str("provider", d.Provider)
	w.strOmitEmpty("reference", d.Reference)
	w.str("status", d.Status)
	w.strOmitEmpty("reason", d.Reason)
	w.strOmitEmpty("provider_status", d.ProviderStatus)
	w.strOmitEmpty("provider_code", d.ProviderCode)
	w.strOmitEmpty("provider_message", d.ProviderMessage)
	w.strOmitEmpty("provider_transaction_id", d.ProviderTransactionID)
	if d.Amount != "" {
		w.name("amount")
		w.number(d.Amount)
	}
	w.strOmitEmpty("currency", d.Currency)
	w.name("attempts")
	var n [20]byte
	w.raw(strconv.AppendInt(n[:0], int64(d.Attempts), 10))
	w.time("requested_at", d.RequestedAt)
	w.time("resolved_at", d.ResolvedAt)
	if len(d.Metadata) > 0 {
		w.name("metadata")
		w.stringMap(d.Metadata)
	}
	if len(d.Details) > 0 {
		w.name("details")
		w.object(d.Details)
	}
	w.end('}')
}

func (w *writer) stringMap(m map[string]string) {
	var keys [32]string
	w.begin('{')
	for _, k := range sortedKeys(m, keys[:0]) {
		w.key(k)
		w.quote(m[k])
	}
	w.end('}')
}

// object writes details, a JSON object written elsewhere, after checking
// it is one, in valid UTF-8, with nothing after it: what a provider wrote
// cannot change the event's structure. Repeated names are left to the
// providers' tests; looking for them doubled the check's cost.
func (w *writer) object(details []byte) {
	if details[0] != '{' || !jsontext.Value(details).IsValid(jsontext.AllowDuplicateNames(true)) {
		if w.err == nil {
			w.err = errors.New("details are not one valid JSON object")
		}
		return
	}
	w.raw(details)
}

// sortedKeys appends m's keys to keys and sorts them. Request metadata has
// at most 32 keys, so a caller's array holds them without an allocation.
func sortedKeys(m map[string]string, keys []string) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isNumber reports whether s is a JSON number literal (RFC 8259 §6):
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?. FuzzIsNumber holds it
// to encoding/json.Valid, and FuzzEncode to encoding/json, which refuses
// to write anything else as a json.Number.
func isNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(s, i)
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		if j := digits(s, i+1); j > i+1 {
			i = j
		} else {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if j := digits(s, i); j > i {
			i = j
		} else {
			return false
		}
	}
	return i == len(s)
}

// digits returns the index after the run of digits that starts at s[i].
func digits(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
