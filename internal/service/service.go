// Package service serves what the bridge knows of each request over NATS,
// as the micro service "statusbridge" (nats.go's micro package, so `nats
// micro ls`, `nats micro info` and `nats micro ping` find it): status.inspect
// answers a request's state and status.cancel stops checking one. Every
// replica serves it in one queue group, and each answers from the shared
// checks bucket, so any replica answers for every request. The client half
// is what `bridge inspect` and `bridge cancel` call.
package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/statusbridge/statusbridge/internal/subscriber"
)

// Names of the public contract (SPEC §8).
const (
	Name           = "statusbridge"
	InspectSubject = "status.inspect"
	CancelSubject  = "status.cancel"
)

// maxBody bounds a request body: a request_id is at most 128 bytes.
const maxBody = 1024

// callTimeout bounds one answer: a key-value read for inspect, a read, two
// writes and a publish for cancel.
const callTimeout = 15 * time.Second

// Requests is what the service answers from (*subscriber.Subscriber).
type Requests interface {
	Inspect(ctx context.Context, requestID string) (subscriber.Inspection, error)
	Cancel(ctx context.Context, requestID string) (subscriber.Inspection, error)
}

// Start adds the service to nc: endpoints "inspect" on status.inspect and
// "cancel" on status.cancel, in micro's default queue group, so that one
// replica answers each call. version is the bridge's; one that is not a
// semantic version (a development build) is served as 0.0.0-<version>.
// Stop the returned service before draining nc.
func Start(ctx context.Context, nc *nats.Conn, version string, r Requests, log *slog.Logger) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        Name,
		Version:     semver(version),
		Description: "statusbridge: inspect and cancel status requests",
	})
	if err != nil {
		return nil, fmt.Errorf("start the %s service: %w", Name, err)
	}
	for _, ep := range []struct {
		name, subject, what string
		call                func(context.Context, string) (subscriber.Inspection, error)
	}{
		{"inspect", InspectSubject, "the request's state; body: the request_id", r.Inspect},
		{"cancel", CancelSubject, "stop checking the request (event expired, reason cancelled); body: the request_id", r.Cancel},
	} {
		h := micro.ContextHandler(ctx, func(ctx context.Context, req micro.Request) { answer(ctx, req, ep.call, log) })
		if err := svc.AddEndpoint(ep.name, h, micro.WithEndpointSubject(ep.subject),
			micro.WithEndpointMetadata(map[string]string{"description": ep.what})); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("start the %s service: endpoint %s: %w", Name, ep.name, err)
		}
	}
	return svc, nil
}

// answer handles one call. The body is never echoed: the errors name what
// is wrong with it, not what it was.
func answer(ctx context.Context, req micro.Request, call func(context.Context, string) (subscriber.Inspection, error), log *slog.Logger) {
	id, problem := requestID(req.Data())
	if problem != "" {
		_ = req.Error("400", problem, nil)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	in, err := call(ctx, id)
	switch {
	case errors.Is(err, subscriber.ErrInvalidRequestID):
		_ = req.Error("400", err.Error(), nil)
		return
	case err != nil:
		log.Error("service call failed", "subject", req.Subject(), "request_id", id, "err", err)
		_ = req.Error("500", "the request's state is unavailable; see the bridge's log", nil)
		return
	}
	b, err := json.Marshal(in)
	if err != nil {
		_ = req.Error("500", "the answer could not be encoded", nil)
		return
	}
	_ = req.Respond(b, micro.WithHeaders(micro.Headers{"Content-Type": {"application/json"}}))
}

// requestID reads a call's body: the request_id, surrounding white space
// ignored.
func requestID(body []byte) (string, string) {
	if len(body) > maxBody {
		return "", fmt.Sprintf("body is %d bytes; it must be a request_id", len(body))
	}
	id := string(bytes.TrimSpace(body))
	switch {
	case id == "":
		return "", "body is empty; it must be a request_id"
	case !idPattern.MatchString(id):
		return "", subscriber.ErrInvalidRequestID.Error()
	}
	return id, ""
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

var semverPattern = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// semver returns version as micro requires it: a semantic version.
func semver(version string) string {
	if v := strings.TrimPrefix(version, "v"); semverPattern.MatchString(v) {
		return v
	}
	var b strings.Builder
	for _, c := range version {
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "0.0.0-dev"
	}
	return "0.0.0-" + b.String()
}

// Error is the service's answer to a call it refused.
type Error struct {
	Code        string // "400": the body; "500": the bridge
	Description string
}

func (e *Error) Error() string { return "bridge answered " + e.Code + ": " + e.Description }

// Call asks the bridges' service on subject (InspectSubject or
// CancelSubject) about requestID and returns the answer. A refused call is
// an *Error; no bridge listening is nats.ErrNoResponders.
func Call(ctx context.Context, nc *nats.Conn, subject, requestID string) (subscriber.Inspection, error) {
	var in subscriber.Inspection
	msg, err := nc.RequestWithContext(ctx, subject, []byte(requestID))
	if err != nil {
		return in, fmt.Errorf("ask %s: %w", subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return in, &Error{Code: code, Description: msg.Header.Get(micro.ErrorHeader)}
	}
	if err := json.Unmarshal(msg.Data, &in); err != nil {
		return in, fmt.Errorf("the answer on %s is not a request's state: %w", subject, err)
	}
	return in, nil
}
