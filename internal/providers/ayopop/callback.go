package ayopop

import (
	"errors"

	"github.com/statusbridge/statusbridge/internal/providers"
)

// Callback is what an Ayopop callback says. Callbacks carry no signature
// (providers.md §1.6), so a callback is only a hint of which reference to
// check: Claimed is for logs and metrics, never a verdict.
type Callback struct {
	RefNumber string
	// Claimed is the state the body's responseCode and success flag
	// claim, or 0 when they claim none that agrees.
	Claimed providers.State
}

// ErrCallback is returned for a body that is not a callback.
var ErrCallback = errors.New("not an Ayopop callback")

// ParseCallback reads a callback body, which has the structure of a status
// answer, with the same strictness (one JSON object, no repeated member).
// The reference is returned as written: the caller validates it as it
// validates a request's.
func ParseCallback(raw []byte) (Callback, error) {
	var r statusResponse
	if e := providers.DecodeJSON(Name, 200, raw, &r); e != nil {
		return Callback{}, ErrCallback
	}
	if r.Data == nil {
		return Callback{}, ErrCallback
	}
	ref, ok := r.Data.RefNumber.Get()
	if !ok || ref == "" {
		return Callback{}, ErrCallback
	}
	cb := Callback{RefNumber: ref}
	if rc, _, ok := responseCode(r.ResponseCode); ok {
		v := classify(rc)
		success, hasSuccess := r.Success.Get()
		switch {
		case v.state == providers.StateSuccess && hasSuccess && success,
			v.state == providers.StateFailed && hasSuccess && !success,
			v.state == providers.StatePending:
			cb.Claimed = v.state
		}
	}
	return cb, nil
}
