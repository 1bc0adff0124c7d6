package providers

import (
	"encoding/json"
	"regexp"

	"github.com/go-json-experiment/json/jsontext"
)

// The types below read the members of a provider answer whose type is not
// always the documented one. A member of an unexpected kind, null
// included, leaves them unset rather than failing the whole answer: it
// decides nothing by itself, and what does decide a verdict is checked
// after decoding. Each is written back in its documented form, and an
// unset one is left out by omitzero (see Details).

// Text is a JSON string or number (IAK writes status as 1 or "1"), kept as
// its text: a string decoded, a number by its literal. It is written as a
// JSON string.
type Text struct {
	s     string
	valid bool
}

// UnmarshalJSONFrom reads one value of any kind from dec.
func (t *Text) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*t = Text{}
	if k := dec.PeekKind(); k != '"' && k != '0' {
		return dec.SkipValue()
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	*t = Text{s: tok.String(), valid: true}
	return nil
}

// MarshalJSONTo writes t as a JSON string.
func (t Text) MarshalJSONTo(enc *jsontext.Encoder) error {
	return enc.WriteToken(jsontext.String(t.s))
}

// IsZero reports whether t is unset.
func (t Text) IsZero() bool { return !t.valid }

// Get returns the text and whether the member was a string or a number.
func (t Text) Get() (string, bool) { return t.s, t.valid }

// String returns the text, or "" when t is unset.
func (t Text) String() string { return t.s }

// Amount returns t as an Amount, unset unless t is a plain decimal.
func (t Text) Amount() Amount {
	if !t.valid || len(t.s) > 32 || !plainDecimal.MatchString(t.s) {
		return Amount{}
	}
	return Amount{json.Number(t.s)}
}

// plainDecimal is what an amount may look like: an optional minus sign,
// digits without a leading zero, an optional fraction. No exponent, and
// nothing a reader of the number could take for another value.
var plainDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// Amount is a sum of money, written as a JSON number or a string: the text
// of a plain decimal, as the provider wrote it. It is written as a JSON
// number.
type Amount struct{ n json.Number }

// UnmarshalJSONFrom reads one value of any kind from dec.
func (a *Amount) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var t Text
	err := t.UnmarshalJSONFrom(dec)
	*a = t.Amount()
	return err
}

// MarshalJSONTo writes a as a JSON number.
func (a Amount) MarshalJSONTo(enc *jsontext.Encoder) error {
	return enc.WriteValue(jsontext.Value(a.n))
}

// IsZero reports whether a is unset.
func (a Amount) IsZero() bool { return a.n == "" }

// Number returns the amount as Result.Amount holds it, "" when unset.
func (a Amount) Number() json.Number { return a.n }

// Bool is a JSON boolean; any other value leaves it unset.
type Bool struct{ value, valid bool }

// UnmarshalJSONFrom reads one value of any kind from dec.
func (b *Bool) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*b = Bool{}
	if k := dec.PeekKind(); k != 't' && k != 'f' {
		return dec.SkipValue()
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	*b = Bool{value: tok.Bool(), valid: true}
	return nil
}

// MarshalJSONTo writes b as a JSON boolean.
func (b Bool) MarshalJSONTo(enc *jsontext.Encoder) error {
	return enc.WriteToken(jsontext.Bool(b.value))
}

// IsZero reports whether b is unset.
func (b Bool) IsZero() bool { return !b.valid }

// Get returns the value and whether the member was a boolean.
func (b Bool) Get() (value, ok bool) { return b.value, b.valid }
