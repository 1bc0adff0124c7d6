package providers

import (
	"encoding/json"

	"github.com/statusbridge/statusbridge/internal/jsonquote"
)

// Details writes Result.Details: a JSON object of the members of an answer
// worth passing on, appended one by one into one buffer, instead of a map
// with a boxed value per member that the event encoder would walk and sort
// again. Keys are names the provider's code fixes (plain ASCII, no
// escaping needed) and must be added in ascending byte order, the order
// encoding/json gives map keys; providertest.CheckDetails holds every
// provider to both. Values are quoted by jsonquote or checked to be
// numbers, so nothing a provider sends can change the structure. The zero
// Details is empty and ready to use.
type Details struct {
	buf     []byte
	members int // written in the object being built
}

// key starts the member named k.
func (d *Details) key(k string) {
	if d.members == 0 {
		if d.buf == nil {
			d.buf = make([]byte, 0, 256)
		}
		d.buf = append(d.buf, '{')
	} else {
		d.buf = append(d.buf, ',')
	}
	d.members++
	d.buf = append(d.buf, '"')
	d.buf = append(d.buf, k...)
	d.buf = append(d.buf, '"', ':')
}

// String adds s under key. Invalid UTF-8 comes out as U+FFFD, as
// encoding/json writes it.
func (d *Details) String(key, s string) {
	d.key(key)
	d.buf = jsonquote.Append(d.buf, s)
}

// Text adds t under key, as a string, when it was a JSON string or number.
func (d *Details) Text(key string, t Text) {
	if s, ok := t.Get(); ok {
		d.String(key, s)
	}
}

// Amount adds t under key, as a JSON number, when it is a plain decimal.
func (d *Details) Amount(key string, t Text) {
	if n, ok := t.Amount(); ok {
		d.key(key)
		d.buf = append(d.buf, n...)
	}
}

// Bool adds v under key.
func (d *Details) Bool(key string, v bool) {
	d.key(key)
	if v {
		d.buf = append(d.buf, "true"...)
	} else {
		d.buf = append(d.buf, "false"...)
	}
}

// Objects adds an array of up to n objects under key, calling fill(i)
// to write the members of the i-th into d: while fill runs, d counts the
// members of that object, and they go into it. An object fill adds no
// member to is left out, and so is the whole array when every object is.
// fill writes into d itself, which it captures, because a Details handed
// to it could be kept, and would be an allocation per object.
func (d *Details) Objects(key string, n int, fill func(i int)) {
	opened := false
	for i := range n {
		mark, before := len(d.buf), d.members
		if opened {
			d.buf = append(d.buf, ',')
		} else {
			d.key(key)
			d.buf = append(d.buf, '[')
		}
		outer := d.members
		d.members = 0 // the object's first member opens it
		fill(i)
		if d.members == 0 {
			d.buf, d.members = d.buf[:mark], before
			continue
		}
		d.buf = append(d.buf, '}')
		d.members = outer
		opened = true
	}
	if opened {
		d.buf = append(d.buf, ']')
	}
}

// JSON returns the object, or nil when no member was added.
func (d *Details) JSON() json.RawMessage {
	if d.members == 0 {
		return nil
	}
	return append(d.buf, '}')
}
