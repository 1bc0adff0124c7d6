package subscriber

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// States a request is in, as `bridge inspect` names them.
const (
	StateParked   = "parked"   // waiting in JetStream for its next check
	StateChecking = "checking" // its next check is due: being checked, or waiting for its provider's capacity
	StateResolved = "resolved" // its event is decided (and published, or being published)
	StateUnknown  = "unknown"  // the bridge holds nothing for this id
)

// Inspection is what `bridge inspect` prints and the status.inspect
// endpoint answers. Fields that do not apply are left out.
type Inspection struct {
	RequestID   string    `json:"request_id"`
	Provider    string    `json:"provider,omitzero"`
	Reference   string    `json:"reference,omitzero"`
	State       string    `json:"state"`
	Attempts    *int      `json:"attempts,omitzero"` // answered checks that served the request
	LastOutcome string    `json:"last_outcome,omitzero"`
	NextCheckAt time.Time `json:"next_check_at,omitzero"` // when parked
	Deadline    time.Time `json:"deadline,omitzero"`
	// With state resolved: the event's id, status and reason.
	EventID string `json:"event_id,omitzero"`
	Status  string `json:"status,omitzero"`
	Reason  string `json:"reason,omitzero"`
}

// ErrInvalidRequestID: the id cannot be a request's (SPEC §2).
var ErrInvalidRequestID = errors.New("request_id must be 1-128 characters from A-Z a-z 0-9 . _ : -")

// errNoState: the bridge runs without its checks bucket.
var errNoState = errors.New("the bridge keeps no request state (no checks bucket)")

// settle records the request as settled with data, then publishes its
// event and acknowledges the request. When another writer (a cancel)
// settled it first, that event is the one published. Requests of a
// provider the bridge does not implement are not recorded: their names
// are the requester's.
func (s *Subscriber) settle(ctx context.Context, d *delivery, st checkState, rev uint64, data publisher.Data) {
	if _, ok := s.providers[d.provider]; ok && s.checksKV != nil {
		st.RequestID, st.Provider, st.Reference, st.Seq = data.RequestID, d.provider, data.Reference, d.seq
		st.RequestedAt, st.Metadata, st.Attempts = d.requestedAt, data.Metadata, data.Attempts
		st.NextCheck = time.Time{}
		st.Event = &data
		if d.attempt <= 1 && rev == 0 {
			// Settled at its first delivery: never recorded, so no cancel
			// can race it, and the record, which only inspect reads, is
			// written beside the publish and finishes after the delivery
			// (shutdown waits for it). Awaited, the stored write would add
			// to the time every request holds a handler (0.75 × the
			// throughput in bridge bench written first, 0.85 beside).
			s.records.Add(1)
			go func() {
				defer s.records.Done()
				s.saveState(ctx, d, st, 0)
			}()
			s.publishAndAck(ctx, *d, data)
			return
		}
		if _, won := s.saveState(ctx, d, st, rev); won != nil {
			s.finishSettled(ctx, *d, *won)
			return
		}
		defer s.unindex(ctx, d.provider, st.Reference, d.requestID)
	}
	s.publishAndAck(ctx, *d, data)
}

// finishSettled ends a delivery of a request found settled: it publishes
// the recorded event (JetStream drops it when it is already stored) unless
// it was recorded as published, and acknowledges the request.
func (s *Subscriber) finishSettled(ctx context.Context, d delivery, st checkState) {
	defer s.unindex(ctx, d.provider, st.Reference, d.requestID)
	if !st.Published {
		s.publishAndAck(ctx, d, *st.Event)
		return
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	if err := d.msg.DoubleAck(dctx); err != nil {
		d.log().Warn("could not ack a request settled outside its delivery; it will be redelivered", "err", err)
		return
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		d.log().Debug("request was settled outside its delivery; acknowledged", "status", st.Event.Status, "reason", st.Event.Reason)
	}
}

// find reads the request's state at every provider the bridge implements
// (request ids are unique per provider): an open request first, otherwise
// the latest written. rev is 0 when there is none.
func (s *Subscriber) find(ctx context.Context, requestID string) (st checkState, rev uint64, err error) {
	if !validRequestID(requestID) {
		return st, 0, ErrInvalidRequestID
	}
	if s.checksKV == nil {
		return st, 0, errNoState
	}
	for _, provider := range slices.Sorted(maps.Keys(s.providers)) {
		cur, r, err := s.readState(ctx, provider, requestID)
		if err != nil {
			return checkState{}, 0, fmt.Errorf("read the state of %s at %s: %w", requestID, provider, err)
		}
		if r == 0 || cur.RequestID != requestID {
			continue // none, or not readable
		}
		open, wasOpen := !cur.settled(), rev > 0 && !st.settled()
		if rev == 0 || open && !wasOpen || open == wasOpen && r > rev {
			st, rev = cur, r
		}
	}
	return st, rev, nil
}

// Inspect reports what the bridge knows of a request.
func (s *Subscriber) Inspect(ctx context.Context, requestID string) (Inspection, error) {
	st, rev, err := s.find(ctx, requestID)
	if err != nil {
		return Inspection{}, err
	}
	return s.inspection(requestID, st, rev), nil
}

func (s *Subscriber) inspection(requestID string, st checkState, rev uint64) Inspection {
	if rev == 0 {
		return Inspection{RequestID: requestID, State: StateUnknown}
	}
	in := Inspection{
		RequestID: requestID, Provider: st.Provider, Reference: st.Reference,
		LastOutcome: st.LastOutcome, Deadline: utcMillis(st.Deadline),
	}
	attempts := st.Attempts
	switch {
	case st.settled():
		in.State = StateResolved
		in.EventID = publisher.EventID(st.Provider, requestID)
		in.Status, in.Reason = st.Event.Status, st.Event.Reason
		attempts = st.Event.Attempts
	case st.NextCheck.After(s.now()):
		in.State = StateParked
		in.NextCheckAt = utcMillis(st.NextCheck)
	default:
		in.State = StateChecking
	}
	in.Attempts = &attempts
	return in
}

func utcMillis(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

// Cancel stops checking an open request: it is settled as expired with
// reason cancelled, and its event published (see settleOutside). A request
// already resolved is left as it is; either way the request's state after
// is returned, with state unknown for an id the bridge holds nothing for.
func (s *Subscriber) Cancel(ctx context.Context, requestID string) (Inspection, error) {
	st, rev, err := s.settleOutside(ctx, func(ctx context.Context) (checkState, uint64, error) {
		return s.find(ctx, requestID)
	}, func(st checkState) (publisher.Data, bool) {
		return publisher.Data{
			RequestID: st.RequestID, Provider: st.Provider, Reference: st.Reference,
			Status: publisher.StatusExpired, Reason: publisher.ReasonCancelled, Attempts: st.Attempts,
			RequestedAt: st.RequestedAt, ResolvedAt: s.now(), Metadata: st.Metadata,
		}, true
	})
	if err != nil {
		return Inspection{}, err
	}
	return s.inspection(requestID, st, rev), nil
}

// settleOutside settles an open request outside its delivery, which
// JetStream holds parked and cannot hand over early: it records the event
// verdict returns as the request's (with compare-and-swap, so a delivery
// settling it at the same time either wins or finds this one), publishes
// it and records the PubAck. The parked delivery, when it comes back,
// finds the request settled and only acknowledges it; should the publish
// fail, that delivery publishes the recorded event. A request already
// settled is returned unchanged, and one the bridge holds nothing for has
// revision 0. lookup reads the request's state; verdict may decline to
// settle it (false), which leaves it unchanged.
func (s *Subscriber) settleOutside(ctx context.Context, lookup func(context.Context) (checkState, uint64, error), verdict func(checkState) (publisher.Data, bool)) (checkState, uint64, error) {
	for range 10 { // a delivery writes a request once per check: it yields soon
		st, rev, err := lookup(ctx)
		if err != nil || rev == 0 || st.settled() {
			return st, rev, err
		}
		requestID := st.RequestID
		data, ok := verdict(st)
		if !ok {
			return st, rev, nil
		}
		st.Event, st.NextCheck = &data, time.Time{}
		rev, err = s.writeState(ctx, st, rev)
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // a delivery wrote meanwhile: look again
		}
		if err != nil {
			return checkState{}, 0, fmt.Errorf("record the outcome of %s: %w", requestID, err)
		}
		log := s.log.With("provider", st.Provider, "request_id", requestID)
		ev := publisher.NewEvent(data)
		subject := topology.ResolvedSubject(st.Provider, data.Status)
		pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
		d := delivery{provider: st.Provider, requestID: requestID, base: s.log, parent: remoteParent(st.TraceParent, st.TraceState)}
		if d.parent.IsValid() {
			pctx = trace.ContextWithRemoteSpanContext(pctx, d.parent)
		}
		pctx, span := s.startPublish(pctx, d, subject, &ev)
		dup, err := s.pub.Publish(pctx, subject, ev)
		endPublish(span, dup, err)
		cancel()
		if err != nil {
			// Recorded: the parked delivery publishes it when it comes back.
			s.m.PublishErrors.WithLabelValues("event").Inc()
			log.Warn("event publish failed; the request's next delivery publishes it", "err", err, "event_id", ev.ID)
			return st, rev, nil
		}
		st.Published = true
		if r, err := s.writeState(ctx, st, rev); err == nil {
			rev = r
		} else {
			log.Warn("event published but not recorded as such; the request's next delivery publishes it again, and JetStream drops the copy", "err", err)
		}
		label := s.label(st.Provider)
		if dup {
			s.m.EventDuplicates.WithLabelValues(label).Inc()
		}
		s.perReq.events.With(label, data.Status, metrics.ReasonLabel(data.Reason)).Inc()
		log.Info("request resolved outside its delivery", "status", data.Status, "reason", data.Reason, "event_id", ev.ID, "duplicate", dup)
		return st, rev, nil
	}
	return checkState{}, 0, errors.New("record the outcome: written by others ten times in a row")
}

// writeState writes st over revision rev of its entry.
func (s *Subscriber) writeState(ctx context.Context, st checkState, rev uint64) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	return s.checksKV.Update(ctx, checkKey(st.Provider, st.RequestID), b, rev)
}
