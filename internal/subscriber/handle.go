package subscriber

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// delivery is one request delivery being handled.
type delivery struct {
	msg         jetstream.Msg
	token       string // the subject's provider token, as published
	provider    string // token if it is a plain name, else "unknown"
	attempt     int    // JetStream's delivery count: checks made, this one included
	requestedAt time.Time
	seq         uint64
	requestID   string // once the body gave one
	base        *slog.Logger
	parent      trace.SpanContext // the requester's span, from the traceparent header
}

// log returns a logger naming the delivery. Building one formats its
// attributes, so it is made only for lines that are written: the common
// path writes its one INFO line with LogAttrs instead.
func (d *delivery) log() *slog.Logger {
	if d.requestID == "" {
		return d.base.With("provider", d.provider, "stream_seq", d.seq, "delivery", d.attempt)
	}
	return d.base.With("provider", d.provider, "stream_seq", d.seq, "delivery", d.attempt, "request_id", d.requestID)
}

// handle takes one delivery to its end: an event published and the
// request acknowledged, a dead letter stored and the request terminated,
// or the request parked until its next check. ctx must be one that
// shutdown does not cancel: cutting off a check only wastes the call, and
// cutting off a publish leaves the request to come back after AckWait.
func (s *Subscriber) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery; nothing to settle it with.
		s.log.Error("delivery without JetStream metadata", "subject", msg.Subject(), "err", err)
		return
	}
	token, provider := providerOf(msg.Subject())
	d := delivery{
		msg: msg, token: token, provider: provider,
		attempt:     int(meta.NumDelivered),
		requestedAt: meta.Timestamp,
		seq:         meta.Sequence.Stream,
		base:        s.log,
	}
	ctx = s.extractTrace(ctx, &d)
	s.perReq.deliveries.With(s.label(provider)).Inc()
	req, derr := decodeRequest(msg.Data(), token)
	switch {
	case derr != nil && derr.DeadLetter != "":
		s.deadLetter(ctx, d, derr)
		return
	case derr != nil:
		d.requestID = derr.Partial.RequestID
		d.log().Warn("request rejected", "reason", publisher.ReasonInvalidRequest, "detail", derr.Detail)
		s.settle(ctx, &d, checkState{}, 0, s.rejected(d, derr.Partial, publisher.ReasonInvalidRequest))
		return
	}
	d.requestID = req.RequestID

	client, known := s.providers[provider]
	switch {
	case !known:
		d.log().Warn("request rejected", "reason", publisher.ReasonUnknownProvider)
		s.publishAndAck(ctx, d, s.rejected(d, req, publisher.ReasonUnknownProvider))
		return
	case client == nil:
		d.log().Warn("request rejected", "reason", publisher.ReasonProviderNotConfigured)
		s.settle(ctx, &d, checkState{}, 0, s.rejected(d, req, publisher.ReasonProviderNotConfigured))
		return
	}
	deadline := req.Deadline
	if deadline.IsZero() {
		deadline = d.requestedAt.Add(s.cfg.MaxWait)
	} else if deadline.After(d.requestedAt.Add(s.cfg.MaxDeadline)) {
		d.log().Warn("request rejected", "reason", publisher.ReasonInvalidRequest, "detail", "deadline is further than BRIDGE_MAX_DEADLINE after publish")
		s.settle(ctx, &d, checkState{}, 0, s.rejected(d, req, publisher.ReasonInvalidRequest))
		return
	}

	st, rev := s.loadState(ctx, &d)
	if st.settled() {
		// Settled outside this delivery (a cancel), or by an earlier one
		// whose publish or ack failed: no check, the recorded event.
		s.finishSettled(ctx, d, st)
		return
	}
	recorded := st.Seq == d.seq
	st.RequestID, st.Provider, st.Reference, st.Seq = req.RequestID, provider, req.Reference, d.seq
	st.RequestedAt, st.Deadline, st.Metadata = d.requestedAt, deadline, req.Metadata
	if d.parent.IsValid() {
		st.TraceParent, st.TraceState = traceparent(d.parent), d.parent.TraceState().String()
	}
	o := s.check(ctx, &d, req, client, st)
	now := s.now()
	if o.hold > 0 {
		// No check was made, so no step of the schedule is used: the
		// request waits for the gate or for another check of its reference.
		if now.Before(deadline) {
			hold := o.hold + time.Duration(s.rand()*float64(min(o.hold/4, time.Second)))
			delay := min(hold, deadline.Sub(now))
			if !recorded {
				// The first park makes the request known to inspect and
				// cancel. Later waits leave its next check as it was (it
				// shows as checking), sparing a write per wait.
				st.NextCheck = now.Add(delay)
				if _, won := s.saveState(ctx, &d, st, rev); won != nil {
					s.finishSettled(ctx, d, *won)
					return
				}
				s.index(ctx, &d, st)
			}
			s.park(ctx, &d, delay)
			return
		}
		s.settle(ctx, &d, st, rev, s.expiredUnchecked(d, req, st))
		return
	}
	attempts := st.Attempts
	if o.answered {
		attempts++
	}
	res, err := o.res, o.err
	dec := decide(res, err, timing{
		Attempt:       max(attempts, 1),
		Now:           now,
		RequestedAt:   d.requestedAt,
		Deadline:      deadline,
		NotFoundGrace: s.cfg.NotFoundGrace,
		Schedule:      s.cfg.Schedules[provider],
		Rand:          s.rand,
	})
	if dec.Action == actRetry {
		if o.answered {
			st.Attempts, st.LastCheck, st.LastOutcome = attempts, o.at.UnixNano(), outcomeLabel(res, err)
		}
		st.NextCheck = now.Add(dec.Delay)
		if _, won := s.saveState(ctx, &d, st, rev); won != nil {
			s.finishSettled(ctx, d, *won)
			return
		}
		if !recorded {
			s.index(ctx, &d, st)
		}
		s.park(ctx, &d, dec.Delay)
		return
	}
	data := publisher.Data{
		RequestID:   req.RequestID,
		Provider:    provider,
		Reference:   req.Reference,
		Status:      dec.Status,
		Reason:      dec.Reason,
		Attempts:    attempts,
		RequestedAt: d.requestedAt,
		ResolvedAt:  s.now(),
		Metadata:    req.Metadata,
	}
	withAnswer(&data, res, err)
	s.settle(ctx, &d, st, rev, data)
}

// withAnswer adds what the provider said to an event's data: its answer,
// or the code and message of its failure.
func withAnswer(data *publisher.Data, res providers.Result, err error) {
	if err == nil {
		data.ProviderStatus = res.Status
		data.ProviderCode = res.Code
		data.ProviderMessage = res.Message
		data.ProviderTransactionID = res.TransactionID
		data.Amount = publisher.Amount(res.Amount)
		data.Currency = res.Currency
		data.Details = res.Details
		return
	}
	var pe *providers.Error
	if errors.As(err, &pe) {
		data.ProviderCode = pe.Code
		data.ProviderMessage = pe.Message
	}
}

// park leaves the request with JetStream until its next check.
func (s *Subscriber) park(ctx context.Context, d *delivery, delay time.Duration) {
	delay = max(delay, time.Millisecond)
	if err := d.msg.NakWithDelay(delay); err != nil {
		// The request stays unacknowledged and comes back after AckWait.
		d.log().Warn("could not park the request", "err", err)
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		d.log().Debug("will check again", "delay", delay)
	}
}

// expiredUnchecked is the event of a request whose deadline came while its
// provider's capacity held its last check back: what its last answered
// check said decides the reason.
func (s *Subscriber) expiredUnchecked(d delivery, req Request, st checkState) publisher.Data {
	reason := publisher.ReasonDeadline
	switch st.LastOutcome {
	case "not_found":
		reason = publisher.ReasonNotFound
	case "auth_rejected":
		reason = publisher.ReasonAuthRejected
	case "bad_signature":
		reason = publisher.ReasonBadSignature
	}
	return publisher.Data{
		RequestID: req.RequestID, Provider: d.provider, Reference: req.Reference,
		Status: publisher.StatusExpired, Reason: reason, Attempts: st.Attempts,
		RequestedAt: d.requestedAt, ResolvedAt: s.now(), Metadata: req.Metadata,
	}
}

// rejected is the event data of a request that cannot be checked.
func (s *Subscriber) rejected(d delivery, req Request, reason string) publisher.Data {
	return publisher.Data{
		RequestID:   req.RequestID,
		Provider:    d.provider,
		Reference:   req.Reference,
		Status:      publisher.StatusRejected,
		Reason:      reason,
		RequestedAt: d.requestedAt,
		ResolvedAt:  s.now(),
		Metadata:    req.Metadata,
	}
}

// publishAndAck publishes the event and, once JetStream acknowledged it,
// acknowledges the request, within PublishTimeout under ctx. When the
// publish fails the request is parked briefly and handled again from the
// start: the event id is the same, so a publish that in fact landed is
// deduplicated.
func (s *Subscriber) publishAndAck(ctx context.Context, d delivery, data publisher.Data) (published bool) {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	ev := publisher.NewEvent(data)
	subject := topology.ResolvedSubject(d.provider, data.Status)
	pctx, span := s.startPublish(dctx, d, subject, &ev)
	dup, err := s.pub.Publish(pctx, subject, ev)
	endPublish(span, dup, err)
	if err != nil {
		s.m.PublishErrors.WithLabelValues("event").Inc()
		delay := publishRetryDelay(d.attempt)
		d.log().Error("event publish failed; the request will be handled again", "err", err, "delay", delay)
		_ = d.msg.NakWithDelay(delay)
		return false
	}
	label := s.label(d.provider)
	if dup {
		s.m.EventDuplicates.WithLabelValues(label).Inc()
	}
	if err := d.msg.DoubleAck(dctx); err != nil {
		// The event is out. The request comes back after AckWait and
		// re-publishes the same event id, which JetStream drops.
		d.log().Warn("event published but the request ack failed; it will be redelivered", "err", err, "event_id", ev.ID)
	}
	s.perReq.events.With(label, data.Status, metrics.ReasonLabel(data.Reason)).Inc()
	s.perReq.resolution.With(label, data.Status).Observe(data.ResolvedAt.Sub(data.RequestedAt).Seconds())
	s.perReq.attempts.With(label, data.Status).Observe(float64(data.Attempts))
	s.logResolved(dctx, d, data, ev.ID, dup)
	return true
}

// logResolved writes the settled request's one INFO line, on the path
// every request takes: the provider is formatted once per provider; a
// success has five attributes, which a record holds without allocating
// (reason and duplicate are added only when they say something); and
// the record goes straight to the handler, without the caller's program
// counter that only a source attribute would use.
func (s *Subscriber) logResolved(ctx context.Context, d delivery, data publisher.Data, eventID string, dup bool) {
	log, ok := s.providerLog[d.provider]
	if !ok {
		log = s.log.With("provider", d.provider)
	}
	h := log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request resolved", 0)
	r.AddAttrs(
		slog.String("request_id", d.requestID), slog.String("status", data.Status),
		slog.Int("delivery", d.attempt), slog.String("event_id", eventID),
		slog.Duration("age", data.ResolvedAt.Sub(data.RequestedAt).Round(time.Millisecond)))
	if data.Reason != "" {
		r.AddAttrs(slog.String("reason", data.Reason))
	}
	if dup {
		r.AddAttrs(slog.Bool("duplicate", true))
	}
	_ = h.Handle(ctx, r) // as slog does: a failed log write has nowhere to go
}

// deadLetter stores an unreadable request on status.deadletter.<provider>
// and terminates it, within PublishTimeout under ctx.
func (s *Subscriber) deadLetter(ctx context.Context, d delivery, derr *decodeError) {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	err := s.pub.PublishDeadLetter(dctx, publisher.DeadLetter{
		Subject:          topology.DeadLetterSubject(d.provider),
		Reason:           derr.DeadLetter,
		OriginalSubject:  d.msg.Subject(),
		OriginalSequence: d.seq,
		Body:             d.msg.Data(),
	})
	if err != nil {
		s.m.PublishErrors.WithLabelValues("deadletter").Inc()
		delay := publishRetryDelay(d.attempt)
		d.log().Error("dead-letter publish failed; the request will be handled again", "err", err, "delay", delay)
		_ = d.msg.NakWithDelay(delay)
		return
	}
	if err := d.msg.TermWithReason("deadletter: " + derr.DeadLetter); err != nil {
		d.log().Warn("dead letter stored but the request could not be terminated; it will be redelivered", "err", err)
	}
	s.m.DeadLetters.WithLabelValues(derr.DeadLetter).Inc()
	d.log().Warn("request dead-lettered", "reason", derr.DeadLetter, "detail", derr.Detail, "bytes", len(d.msg.Data()))
}

// publishRetryDelay spaces retries of a failed publish: 1s, 2s, 4s… up to 30s.
func publishRetryDelay(attempt int) time.Duration {
	return min(time.Second<<min(max(attempt-1, 0), 5), 30*time.Second)
}

// label is provider as a metric label: a name the bridge implements, or
// "unknown", so requesters cannot create label values.
func (s *Subscriber) label(provider string) string {
	if _, ok := s.providers[provider]; ok {
		return provider
	}
	return "unknown"
}

// outcomeLabel names a check's outcome for the checks metric.
func outcomeLabel(res providers.Result, err error) string {
	if err == nil {
		return res.State.String()
	}
	for _, c := range causes {
		if errors.Is(err, c.err) {
			return c.label
		}
	}
	return "unclassified"
}

var causes = []struct {
	err   error
	label string
	level slog.Level
}{
	{providers.ErrTransport, "transport", slog.LevelWarn},
	{providers.ErrUnavailable, "unavailable", slog.LevelWarn},
	{providers.ErrRateLimited, "rate_limited", slog.LevelWarn},
	{providers.ErrAuth, "auth_rejected", slog.LevelError},
	{providers.ErrSignature, "bad_signature", slog.LevelError},
	{providers.ErrBadResponse, "bad_response", slog.LevelError},
	{providers.ErrUnknownCode, "unknown_code", slog.LevelError},
	{providers.ErrProtocol, "protocol", slog.LevelError},
	{providers.ErrRejected, "rejected", slog.LevelWarn},
	{providers.ErrHTTPStatus, "http_status", slog.LevelError},
}

// logCheck logs one check: answers at DEBUG ("pending" is not a failure),
// failures that only need time at WARN, failures an operator must look at
// (credentials, signatures, unknown codes) at ERROR.
func (s *Subscriber) logCheck(ctx context.Context, d *delivery, res providers.Result, err error) {
	if err == nil {
		if s.log.Enabled(ctx, slog.LevelDebug) {
			d.log().Debug("checked", "state", res.State.String(), "provider_code", res.Code)
		}
		return
	}
	level := slog.LevelError
	for _, c := range causes {
		if errors.Is(err, c.err) {
			level = c.level
			break
		}
	}
	attrs := []any{"err", err.Error(), "kind", providers.KindOf(err).String()}
	var pe *providers.Error
	if errors.As(err, &pe) {
		attrs = append(attrs, "http_status", pe.HTTPStatus, "provider_code", pe.Code)
	}
	d.log().Log(ctx, level, "check failed", attrs...)
}
