package subscriber

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/publisher"
)

// A provider that sends callbacks (Config.Callbacks) has its open requests
// indexed by reference in the checks bucket, so that a callback about a
// reference finds them: one key per parked request, written with its first
// record and deleted when it is settled. Other providers pay nothing.

// openKey is an open request's key in the index. Its value is the
// request_id.
func openKey(provider, reference, requestID string) string {
	return openPrefix(provider, reference) + checkKey(provider, requestID)[len("req."):]
}

func openPrefix(provider, reference string) string {
	sum := sha256.Sum256([]byte(reference))
	return "open." + provider + "." + hex.EncodeToString(sum[:20]) + "."
}

// index records a request parked for the first time as open, when its
// provider sends callbacks. A failed write only costs the request the fast
// path: its schedule still checks it.
func (s *Subscriber) index(ctx context.Context, d *delivery, st checkState) {
	if !s.cfg.Callbacks[d.provider] || s.checksKV == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	if _, err := s.checksKV.Put(ctx, openKey(d.provider, st.Reference, d.requestID), []byte(d.requestID)); err != nil {
		s.capm.StateErrors.WithLabelValues(d.provider).Inc()
		d.log().Warn("could not index the request for callbacks; its schedule still checks it", "err", err)
	}
}

// unindex removes a settled request from the index.
func (s *Subscriber) unindex(ctx context.Context, provider, reference, requestID string) {
	if !s.cfg.Callbacks[provider] || s.checksKV == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	// A key left behind is found settled by the next callback, which
	// deletes it, and ages out with the bucket.
	_ = s.checksKV.Purge(ctx, openKey(provider, reference, requestID))
}

// openRequests lists the request ids indexed as open for reference.
func (s *Subscriber) openRequests(ctx context.Context, provider, reference string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	w, err := s.checksKV.WatchFiltered(ctx, []string{openPrefix(provider, reference) + "*"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var ids []string
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // every current key has been delivered
				return ids, nil
			}
			if id := string(e.Value()); validRequestID(id) {
				ids = append(ids, id)
			}
		case <-ctx.Done():
			return ids, ctx.Err()
		}
	}
}

// What a callback's confirming check came to, as the callback metrics
// name it (callback.CheckResults).
const (
	confirmResolved  = "resolved"        // final: the open requests are settled by it
	confirmPending   = "pending"         // not final: nothing changes
	confirmNoRequest = "no_open_request" // no open request has that reference
	confirmFailed    = "check_failed"    // no answer, or one that is no verdict
	confirmHeld      = "held"            // the provider's capacity held the check back
)

// confirmWait bounds how long a confirming check waits for its provider's
// rate limit, breaker or another replica's check of the reference.
const confirmWait = 2 * time.Second

// Confirm makes the confirming status check a callback about reference
// asks for, outside any delivery, and settles every open request for it
// that the answer settles, each with its own event. A callback is never
// believed: only the status API's authenticated answer counts, so a
// callback claiming success while the API says pending changes nothing.
// The check goes through the provider's gate and its answer is shared
// with the parked deliveries, as any check's.
func (s *Subscriber) Confirm(ctx context.Context, provider, reference string) string {
	client := s.providers[provider]
	if client == nil || s.checksKV == nil || !validReference(reference) {
		return confirmFailed
	}
	log := s.log.With("provider", provider, "callback", true)
	ids, err := s.openRequests(ctx, provider, reference)
	if err != nil {
		s.capm.StateErrors.WithLabelValues(provider).Inc()
		log.Warn("could not list the open requests of a callback's reference", "err", err)
		return confirmFailed
	}
	if len(ids) == 0 {
		return confirmNoRequest
	}

	// Only an answer given after the callback arrived may serve: the
	// callback says something changed.
	now := s.now()
	d := &delivery{token: provider, provider: provider, requestedAt: now, base: log}
	st := checkState{Attempts: 1, LastCheck: now.UnixNano()}
	key := provider + "\x00" + reference
	var o checkOutcome
	for until := time.Now().Add(confirmWait); ; {
		o = s.checkShared(ctx, d, Request{Reference: reference}, client, st, key, &flight{done: make(chan struct{})})
		if o.hold <= 0 || time.Now().Add(o.hold).After(until) {
			break
		}
		select {
		case <-time.After(o.hold):
		case <-ctx.Done():
			return confirmHeld
		}
	}
	switch {
	case o.hold > 0:
		return confirmHeld
	case !o.answered || o.err != nil:
		return confirmFailed
	case !o.res.State.Final():
		return confirmPending
	}

	for _, id := range ids {
		st, _, err := s.settleOutside(ctx, func(ctx context.Context) (checkState, uint64, error) {
			return s.readState(ctx, provider, id)
		}, func(st checkState) (publisher.Data, bool) {
			if st.RequestID != id || st.Reference != reference {
				return publisher.Data{}, false // the id's latest publish is another request
			}
			at := s.now()
			dec := decide(o.res, nil, timing{
				Attempt: st.Attempts + 1, Now: at, RequestedAt: st.RequestedAt, Deadline: st.Deadline,
				NotFoundGrace: s.cfg.NotFoundGrace, Schedule: s.cfg.Schedules[provider],
			})
			data := publisher.Data{
				RequestID: st.RequestID, Provider: st.Provider, Reference: st.Reference,
				Status: dec.Status, Reason: dec.Reason, Attempts: st.Attempts + 1,
				RequestedAt: st.RequestedAt, ResolvedAt: at, Metadata: st.Metadata,
			}
			withAnswer(&data, o.res, nil)
			return data, true
		})
		if err != nil {
			log.Warn("could not settle a request its callback confirmed; its next delivery checks it", "request_id", id, "err", err)
			continue
		}
		if st.settled() || st.Reference != reference {
			s.unindex(ctx, provider, reference, id)
		}
	}
	return confirmResolved
}
