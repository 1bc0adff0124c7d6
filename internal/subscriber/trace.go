package subscriber

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

// Trace context. A request published with a W3C traceparent header (and
// tracestate) has the checks made for it and its event's publish as spans
// of that trace, children of the requester's span. Its event carries the
// publish span's context in the traceparent and tracestate headers and the
// CloudEvents attributes of the same names. With tracing off the spans are
// the no-op tracer's, which are the requester's span itself: the event
// then carries the request's trace context as it came. A request without
// a valid traceparent makes no spans and its event carries none.
//
// A check shared by several requests (one joined while its call was under
// way in this replica, or an answer read from the shared bucket) is one
// span, in the trace of the request that made the call: it links to the
// trace of each request that joined it while it ran, and each request it
// served has a span of its own, marked shared, that links to it.

// tracerName is the instrumentation scope of the bridge's spans.
const tracerName = "github.com/statusbridge/statusbridge/internal/subscriber"

// traceContext reads and writes W3C trace context: version 00 with no
// extra fields or reserved flags, lowercase hex, trace and span id not
// zero (the library's parser).
var traceContext = propagation.TraceContext{}

// Bounds of a request's trace headers. The bridge reads version 00 only,
// which has exactly 55 characters; a later version (which W3C lets a
// parser try, or restart the trace) is ignored. A tracestate longer than
// the 512 characters W3C asks every vendor to pass on is dropped, and the
// traceparent kept.
const (
	traceparentLen = 55
	maxTracestate  = 512
)

// Span attributes. The reference is left out: it may be a customer's
// number, and trace stores are read more widely than events.
const (
	attrProvider  = attribute.Key("statusbridge.provider")
	attrRequestID = attribute.Key("statusbridge.request_id")
	attrOutcome   = attribute.Key("statusbridge.check.outcome")
	attrShared    = attribute.Key("statusbridge.check.shared")
	attrSharedBy  = attribute.Key("statusbridge.check.shared_by")
	attrAttempt   = attribute.Key("statusbridge.attempt")
	attrWaiters   = attribute.Key("statusbridge.check.waiters")
	attrStatus    = attribute.Key("statusbridge.status")
	attrReason    = attribute.Key("statusbridge.reason")
	attrDuplicate = attribute.Key("statusbridge.event.duplicate")
)

// Where a shared answer came from, as statusbridge.check.shared_by says.
const (
	viaFlight = "flight" // a check of this replica the request joined
	viaBucket = "bucket" // an answer in the capacity bucket
)

// requestHeaders is a request's NATS headers as the propagator reads them.
// They are the requester's: a traceparent must be one header of the exact
// length; any other is ignored.
type requestHeaders nats.Header

func (h requestHeaders) Get(key string) string {
	v := h.values(key)
	switch key {
	case "traceparent":
		if len(v) != 1 || len(v[0]) != traceparentLen || !strings.HasPrefix(v[0], "00-") {
			return ""
		}
		return v[0]
	case "tracestate":
		// Several tracestate headers are one list (W3C).
		if s := strings.Join(v, ","); len(s) <= maxTracestate {
			return s
		}
	}
	return ""
}

// values reads key as W3C names it, or as Go's net/http writes it.
func (h requestHeaders) values(key string) []string {
	if v, ok := h[key]; ok {
		return v
	}
	switch key {
	case "traceparent":
		return h["Traceparent"]
	case "tracestate":
		return h["Tracestate"]
	}
	return nil
}

func (requestHeaders) Set(string, string) {}
func (requestHeaders) Keys() []string     { return []string{"traceparent", "tracestate"} }

// extractTrace returns ctx with the request's trace context as the remote
// parent of its spans, and records it in d, when its headers carry a
// valid one. An invalid one is ignored, and never echoed.
func (s *Subscriber) extractTrace(ctx context.Context, d *delivery) context.Context {
	h := requestHeaders(d.msg.Headers())
	if len(h) == 0 {
		return ctx
	}
	tctx := traceContext.Extract(ctx, h)
	if sc := trace.SpanContextFromContext(tctx); sc.IsValid() && sc.IsRemote() {
		d.parent = sc
		return tctx
	}
	if h.values("traceparent") != nil && s.log.Enabled(ctx, slog.LevelDebug) {
		d.log().Debug("traceparent ignored: not a W3C trace context this bridge reads")
	}
	return ctx
}

// traceHeaders formats the span context of ctx as traceparent and
// tracestate.
func traceHeaders(ctx context.Context) (traceparent, tracestate string) {
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// traceparent formats sc, or is empty for the zero span context.
func traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	tp, _ := traceHeaders(trace.ContextWithSpanContext(context.Background(), sc))
	return tp
}

// spanOf reads a stored traceparent back (an empty or invalid one gives
// the zero span context).
func spanOf(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent}))
}

// remoteParent reads a request's stored trace context back as the remote
// parent of the spans made for it outside its delivery.
func remoteParent(traceparent, tracestate string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return trace.SpanContextFromContext(traceContext.Extract(context.Background(), c))
}

// startCall starts the span of the provider call a traced request's
// delivery makes, and hands it to the flight, so that requests joining
// the check link their traces to it. It returns a nil span for a request
// without trace context.
func (s *Subscriber) startCall(ctx context.Context, d *delivery, f *flight) (context.Context, trace.Span) {
	if !d.parent.IsValid() {
		return ctx, nil
	}
	ctx, span := s.tracer.Start(ctx, "check "+d.provider, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrProvider.String(d.provider), attrRequestID.String(d.requestID), attrAttempt.Int(d.attempt)))
	s.flights.mu.Lock()
	links := f.links
	f.span, f.links = span, nil
	s.flights.mu.Unlock()
	for _, l := range links {
		span.AddLink(l)
	}
	return ctx, span
}

// link links the trace of a request that joined a check under way
// to the check's span (or keeps the link until the span starts).
func (fs *flights) link(f *flight, d *delivery) {
	if !d.parent.IsValid() {
		return
	}
	l := trace.Link{SpanContext: d.parent, Attributes: []attribute.KeyValue{attrRequestID.String(d.requestID)}}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	select {
	case <-f.done:
		return
	default:
	}
	if f.span != nil {
		f.span.AddLink(l)
		return
	}
	f.links = append(f.links, l)
}

// endCall ends the call's span with its outcome and returns its context
// when it is recorded, for the requests it serves to link to.
func endCall(span trace.Span, res providers.Result, err error, waiters int) trace.SpanContext {
	if span == nil {
		return trace.SpanContext{}
	}
	defer span.End()
	if !span.IsRecording() {
		return trace.SpanContext{}
	}
	outcome := outcomeLabel(res, err)
	span.SetAttributes(attrOutcome.String(outcome), attrWaiters.Int(waiters))
	if err != nil {
		span.SetStatus(codes.Error, outcome)
	}
	return span.SpanContext()
}

// traceShared records, in a traced request's trace, a check it did not
// make: the answer of another request's check, linked to that check's
// span. It spans from start, when the request's check began, to now. A
// hold, where no check was made, makes no span.
func (s *Subscriber) traceShared(ctx context.Context, d *delivery, start time.Time, o checkOutcome, via string) {
	if !d.parent.IsValid() || o.hold > 0 {
		return
	}
	opts := []trace.SpanStartOption{
		trace.WithTimestamp(start),
		trace.WithAttributes(attrProvider.String(d.provider), attrRequestID.String(d.requestID), attrAttempt.Int(d.attempt),
			attrShared.Bool(true), attrSharedBy.String(via), attrOutcome.String(outcomeLabel(o.res, o.err))),
	}
	if o.span.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: o.span}))
	}
	_, span := s.tracer.Start(ctx, "check "+d.provider, opts...)
	if o.err != nil {
		span.SetStatus(codes.Error, outcomeLabel(o.res, o.err))
	}
	span.End()
}

// startPublish starts the span of a traced request's event publish and
// puts its context in the event. It returns a nil span for a request
// without trace context.
func (s *Subscriber) startPublish(ctx context.Context, d delivery, subject string, ev *publisher.Event) (context.Context, trace.Span) {
	if !d.parent.IsValid() {
		return ctx, nil
	}
	ctx, span := s.tracer.Start(ctx, "publish "+subject, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.message.id", ev.ID),
			attrProvider.String(d.provider), attrRequestID.String(d.requestID), attrStatus.String(ev.Data.Status)))
	if ev.Data.Reason != "" {
		span.SetAttributes(attrReason.String(ev.Data.Reason))
	}
	ev.TraceParent, ev.TraceState = traceHeaders(ctx)
	return ctx, span
}

// endPublish ends the publish span with what JetStream said.
func endPublish(span trace.Span, dup bool, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "publish failed")
	} else if dup {
		span.SetAttributes(attrDuplicate.Bool(true))
	}
	span.End()
}
