package publisher

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// storedEvent publishes fullEvent with p and returns the message the
// events stream holds.
func storedEvent(t *testing.T, js jetstream.JetStream, p *Publisher, requestID string) *jetstream.RawStreamMsg {
	t.Helper()
	ev := fullEvent()
	ev.ID = EventID("iak", requestID)
	if _, err := p.Publish(t.Context(), "status.resolved.iak.success", ev); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), "status.resolved.iak.success")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSignedEvents(t *testing.T) {
	js := jetStreamFor(t)
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	account, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	other, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	userKey, _ := user.PublicKey()
	accountKey, _ := account.PublicKey()
	otherKey, _ := other.PublicKey()

	signed := storedEvent(t, js, New(js, "EVENTS", "DEADLETTER", WithSigner(user)), "signed-by-user")
	if got := signed.Header.Get(HeaderSigner); got != userKey {
		t.Fatalf("%s = %q, want the seed's public key %s", HeaderSigner, got, userKey)
	}
	bySeed := storedEvent(t, js, New(js, "EVENTS", "DEADLETTER", WithSigner(account)), "signed-by-account")
	unsigned := storedEvent(t, js, New(js, "EVENTS", "DEADLETTER"), "unsigned")

	flipped := append([]byte(nil), signed.Data...)
	flipped[len(flipped)/2] ^= 1
	withoutSignature := nats.Header{HeaderSigner: signed.Header.Values(HeaderSigner)}
	twice := nats.Header{HeaderSigner: {userKey}, HeaderSignature: {signed.Header.Get(HeaderSignature), signed.Header.Get(HeaderSignature)}}
	garbled := nats.Header{HeaderSigner: {userKey}, HeaderSignature: {signed.Header.Get(HeaderSignature) + "="}}
	posing := nats.Header{HeaderSigner: {otherKey}, HeaderSignature: signed.Header.Values(HeaderSignature)}

	tests := []struct {
		name    string
		payload []byte
		header  nats.Header
		trusted []string
		want    error
	}{
		{"signed by a trusted user key", signed.Data, signed.Header, []string{userKey}, nil},
		{"signed by a trusted account key", bySeed.Data, bySeed.Header, []string{accountKey}, nil},
		{"either of two signers during a rollover", signed.Data, signed.Header, []string{otherKey, userKey}, nil},
		{"one byte of the payload changed", flipped, signed.Header, []string{userKey}, ErrBadSignature},
		{"another signer than the trusted one", signed.Data, signed.Header, []string{otherKey}, ErrUntrustedSigner},
		{"a trusted signer named over another's signature", signed.Data, posing, []string{otherKey}, ErrBadSignature},
		{"no headers", signed.Data, nil, []string{userKey}, ErrUnsigned},
		{"signer without signature", signed.Data, withoutSignature, []string{userKey}, ErrUnsigned},
		{"signature given twice", signed.Data, twice, []string{userKey}, ErrUnsigned},
		{"signature not base64url without padding", signed.Data, garbled, []string{userKey}, ErrBadSignature},
		{"no trusted signer", signed.Data, signed.Header, nil, ErrUntrustedSigner},
		{"published unsigned", unsigned.Data, unsigned.Header, []string{userKey}, ErrUnsigned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyEvent(tc.payload, tc.header, tc.trusted...)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("VerifyEvent = %v, want %v", err, tc.want)
			}
		})
	}
	for _, h := range []string{HeaderSigner, HeaderSignature} {
		if v := unsigned.Header.Values(h); len(v) > 0 {
			t.Errorf("unsigned publisher set %s: %q", h, v)
		}
	}
	if signed.Header.Get("Content-Type") != ContentType || signed.Header.Get("Nats-Msg-Id") == "" {
		t.Errorf("signing lost the other headers: %v", signed.Header)
	}
}

func TestSignerMustSign(t *testing.T) {
	curve, err := nkeys.CreateCurveKeys()
	if err != nil {
		t.Fatal(err)
	}
	p := New(acker{}, "EVENTS", "DEADLETTER", WithSigner(curve))
	if _, err := p.Publish(t.Context(), "status.resolved.iak.success", fullEvent()); err == nil {
		t.Error("an event signed by a curve key (which cannot sign) was published")
	}
}

func ExampleVerifyEvent() {
	// The bridge's seed (BRIDGE_EVENT_SIGNING_SEED_FILE) and its public
	// key, which subscribers are given.
	seed, _ := nkeys.CreateAccount()
	trusted, _ := seed.PublicKey()

	// An event message as the bridge publishes it when it signs.
	payload := []byte(`{"specversion":"1.0","id":"…","data":{"status":"success"}}`)
	sig, _ := seed.Sign(payload)
	header := nats.Header{}
	header.Set(HeaderSigner, trusted)
	header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))

	fmt.Println(VerifyEvent(payload, header, trusted))
	forged := bytes.Replace(payload, []byte("success"), []byte("failed!"), 1)
	fmt.Println(errors.Is(VerifyEvent(forged, header, trusted), ErrBadSignature))
	fmt.Println(errors.Is(VerifyEvent(payload, nil, trusted), ErrUnsigned))
	// Output:
	// <nil>
	// true
	// true
}
