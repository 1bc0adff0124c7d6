package publisher

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Headers of a signed event (BRIDGE_EVENT_SIGNING_SEED_FILE).
const (
	// HeaderSigner is the public nkey of the seed that signed the event.
	HeaderSigner = "Statusbridge-Signer"
	// HeaderSignature is the Ed25519 signature of the message payload, the
	// event's JSON bytes exactly as published, in base64url without
	// padding (base64.RawURLEncoding).
	HeaderSignature = "Statusbridge-Signature"
)

// Why VerifyEvent refuses an event; match them with errors.Is.
var (
	ErrUnsigned        = errors.New("event is not signed")
	ErrUntrustedSigner = errors.New("event signer is not trusted")
	ErrBadSignature    = errors.New("event signature does not verify")
)

// Option configures a Publisher.
type Option func(*Publisher)

// WithSigner signs every event with kp, which may be any nkey that can sign
// (user, account, operator, server or cluster; not a curve key): the
// message gets the headers HeaderSigner and HeaderSignature. A nil kp
// leaves events unsigned.
func WithSigner(kp nkeys.KeyPair) Option {
	return func(p *Publisher) { p.signer = kp }
}

// sign adds the signature headers of msg's payload.
func (p *Publisher) sign(msg *nats.Msg) error {
	public, err := p.signer.PublicKey()
	if err != nil {
		return fmt.Errorf("sign event: %w", err)
	}
	sig, err := p.signer.Sign(msg.Data)
	if err != nil {
		return fmt.Errorf("sign event: %w", err)
	}
	msg.Header.Set(HeaderSigner, public)
	msg.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
	return nil
}

// VerifyEvent checks that an event message was signed by one of the
// trusted public nkeys (two during a rollover of the signing seed): payload
// is the message's data exactly as received, header its NATS headers. It
// returns nil for a good signature by a trusted signer, and otherwise an
// error matching ErrUnsigned (a header is missing or repeated),
// ErrUntrustedSigner, or ErrBadSignature (the payload or the signature was
// changed, or the signature is malformed).
//
// A signature proves who wrote the payload, not where it was sent: before
// acting on an event also check that its subject names its data's provider
// and status, and deduplicate on its id (docs/trust.md).
func VerifyEvent(payload []byte, header nats.Header, trusted ...string) error {
	signers, sigs := header.Values(HeaderSigner), header.Values(HeaderSignature)
	if len(signers) != 1 || len(sigs) != 1 || signers[0] == "" || sigs[0] == "" {
		return ErrUnsigned
	}
	signer := signers[0]
	if !slices.Contains(trusted, signer) {
		return fmt.Errorf("%w: %s", ErrUntrustedSigner, signer)
	}
	kp, err := nkeys.FromPublicKey(signer)
	if err != nil {
		return fmt.Errorf("%w: signer %s: %v", ErrBadSignature, signer, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigs[0])
	if err != nil {
		return fmt.Errorf("%w: not base64url without padding", ErrBadSignature)
	}
	if err := kp.Verify(payload, sig); err != nil {
		return fmt.Errorf("%w: signer %s", ErrBadSignature, signer)
	}
	return nil
}
