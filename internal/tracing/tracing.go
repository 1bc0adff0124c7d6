// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment: spans exported over OTLP/HTTP when an OTLP endpoint is
// set, and a no-op tracer provider otherwise, which costs nothing.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const DefaultServiceName = "statusbridge"

// Provider is the bridge's tracer provider.
type Provider struct {
	trace.TracerProvider
	// Enabled reports that spans are exported.
	Enabled  bool
	shutdown func(context.Context) error
}

// Shutdown exports the spans still buffered and stops the exporter, within
// ctx. It is a no-op when tracing is off.
func (p Provider) Shutdown(ctx context.Context) error {
	if p.shutdown == nil {
		return nil
	}
	return p.shutdown(ctx)
}

// Setup builds the tracer provider the process environment asks for
// (the exporter and the SDK read it themselves). Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, unless OTEL_SDK_DISABLED is
// true or OTEL_TRACES_EXPORTER is none. The exporter is OTLP over HTTP
// (protobuf) and reads the other OTEL_EXPORTER_OTLP_* variables itself
// (headers, timeout, compression, certificates); the SDK reads
// OTEL_TRACES_SAMPLER (default: parentbased_always_on, so a requester's
// sampling decision holds), OTEL_BSP_* and OTEL_RESOURCE_ATTRIBUTES.
// Export errors are logged to log at WARN level.
func Setup(ctx context.Context, version string, log *slog.Logger) (Provider, error) {
	getenv := os.Getenv
	off := Provider{TracerProvider: noop.NewTracerProvider()}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return off, nil
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return off, nil
	}
	switch e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e {
	case "", "otlp":
	case "none":
		return off, nil
	default:
		return off, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: the bridge exports traces with otlp only (or none)", e)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if p := strings.TrimSpace(protocol); p != "" && p != "http/protobuf" {
		return off, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: the bridge exports OTLP over HTTP only (http/protobuf, the collector's port 4318)", p)
	}

	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return off, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// The defaults first, so that the environment's service.name wins.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(DefaultServiceName), semconv.ServiceVersion(version)),
		resource.WithFromEnv(),
	)
	if err != nil && res == nil {
		return off, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	// The SDK reports export failures through the global error handler;
	// the bridge's own log is where operators look.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: span export failed", "err", err)
	}))
	log.Info("tracing: exporting spans over OTLP/HTTP", "service_name", serviceName(res))
	return Provider{TracerProvider: tp, Enabled: true, shutdown: tp.Shutdown}, nil
}

func serviceName(res *resource.Resource) string {
	if v, ok := res.Set().Value(semconv.ServiceNameKey); ok {
		return v.AsString()
	}
	return ""
}
