package providers

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind says what a caller can do about a failed check.
type Kind uint8

const (
	// Retryable: the check told us nothing about the payment; ask again on
	// the schedule. The caller's deadline bounds it. This is the zero value,
	// so an unclassified error is retried, never turned into a verdict.
	Retryable Kind = iota
	// BadRequest: the provider refuses this query for good (for example a
	// reference it says is malformed). Asking again cannot help.
	BadRequest
)

func (k Kind) String() string {
	if k == BadRequest {
		return "bad_request"
	}
	return "retryable"
}

// Causes, matched with errors.Is. Each Error wraps exactly one of them.
var (
	// ErrTransport: no usable HTTP response (DNS, connect, reset, TLS,
	// timeout).
	ErrTransport = errors.New("transport error")
	// ErrUnavailable: the provider answered 408, 5xx or a maintenance or
	// busy code.
	ErrUnavailable = errors.New("provider unavailable")
	// ErrRateLimited: the provider answered 429 or a rate-limit code.
	ErrRateLimited = errors.New("rate limited")
	// ErrAuth: the provider rejected our credentials, signature or source
	// address. An operator has to act; it says nothing about the payment.
	ErrAuth = errors.New("authentication rejected")
	// ErrSignature: the response could not be authenticated (missing or
	// wrong signature). Nothing in it is trusted.
	ErrSignature = errors.New("response signature invalid")
	// ErrBadResponse: a response we cannot read: not JSON, the wrong shape,
	// too large, or self-contradictory.
	ErrBadResponse = errors.New("unreadable response")
	// ErrUnknownCode: a well-formed response with a code the code table does
	// not know.
	ErrUnknownCode = errors.New("unknown response code")
	// ErrProtocol: the provider says our request is malformed (wrong path,
	// command or format): a client or configuration bug, not a verdict.
	ErrProtocol = errors.New("request not understood by provider")
	// ErrRejected: the provider says the query itself is invalid.
	ErrRejected = errors.New("query rejected by provider")
	// ErrHTTPStatus: an HTTP status that no other cause covers.
	ErrHTTPStatus = errors.New("unexpected http status")
)

// Error is the only error type Provider.Status returns.
type Error struct {
	Provider string
	Kind     Kind
	// Err is the cause: one of the sentinels above, possibly wrapping detail.
	Err error
	// HTTPStatus is the response status, 0 when there was no response.
	HTTPStatus int
	// Code and Message are the provider's code and message when the body
	// had them.
	Code    string
	Message string
	// RetryAfter is the provider's requested wait (Retry-After), 0 if none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.HTTPStatus != 0 {
		b.WriteString(" (http ")
		b.WriteString(strconv.Itoa(e.HTTPStatus))
		b.WriteString(")")
	}
	if e.Code != "" {
		b.WriteString(" (code ")
		b.WriteString(strconv.Quote(e.Code))
		b.WriteString(")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err. An error that is not an *Error counts as
// Retryable: the deadline bounds it, and a payment is never settled on a guess.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Retryable
}

// Errorf builds a Retryable *Error for provider whose cause wraps sentinel
// with a detail message; an empty format adds no detail.
func Errorf(provider string, sentinel error, format string, args ...any) *Error {
	if format == "" {
		return &Error{Provider: provider, Err: sentinel}
	}
	return &Error{Provider: provider, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}
