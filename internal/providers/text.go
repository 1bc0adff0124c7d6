package providers

import (
	"encoding/json"

	"github.com/go-json-experiment/json/jsontext"
)

// Text is a provider member whose documented type is not always the type
// sent (IAK writes status as 1 or "1"): a JSON string or number, read as
// its text as Scalar does. Any other value, null included, leaves it
// unset rather than failing the whole response: a member of an odd type
// decides nothing by itself. It is meant for response structs decoded by
// DecodeJSON, which reads it straight from the body without a copy of the
// raw member, or read member by member with SetJSON.
type Text struct {
	s     string
	valid bool
}

// UnmarshalJSONFrom reads one value of any kind from dec.
func (t *Text) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	t.s, t.valid = Scalar(json.RawMessage(raw))
	return nil
}

// SetJSON sets t from raw, a member's value in text that ObjectText
// returned, as UnmarshalJSONFrom would: a string that needs no decoding,
// or a number (valid, since the whole text was), is taken as a substring
// of raw without a copy.
func (t *Text) SetJSON(raw string) {
	switch raw[0] {
	case '"':
		if plainJSONString(raw) {
			*t = Text{s: raw[1 : len(raw)-1], valid: true}
			return
		}
		t.s, t.valid = Scalar(json.RawMessage(raw))
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		*t = Text{s: raw, valid: true}
	default:
		*t = Text{}
	}
}

// Get returns the text and whether the member was a string or a number.
func (t Text) Get() (string, bool) { return t.s, t.valid }

// String returns the text, or "" when the member was absent or of
// another kind.
func (t Text) String() string { return t.s }

// Amount returns the text as a json.Number when it is a plain decimal
// number (written as a JSON number or a string): what an amount may look
// like, and nothing JSON would misread.
func (t Text) Amount() (json.Number, bool) {
	if !t.valid || !isDecimal(t.s) {
		return "", false
	}
	return json.Number(t.s), true
}

// AppendJSONString appends s quoted as encoding/json quotes it, for
// request bodies built without reflection that must keep its bytes. Printable
// ASCII other than " \ < > & goes out as it is, and references are such
// text. Anything else goes through json.Marshal: a reference is hostile
// input, and encoding/json's escaping of it (HTML characters, U+2028 and
// U+2029, invalid UTF-8) is not jsontext.AppendQuote's.
func AppendJSONString(dst []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string always encodes
			return append(dst, quoted...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
