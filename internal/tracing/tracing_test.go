package tracing

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// These tests set the process environment: they do not run in parallel.

var quiet = slog.New(slog.DiscardHandler)

func TestOffWithoutAnEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"no OTEL_* variables", nil},
		{"a service name but no endpoint", map[string]string{"OTEL_SERVICE_NAME": "x"}},
		{"OTEL_SDK_DISABLED", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "TRUE"}},
		{"OTEL_TRACES_EXPORTER=none", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces", "OTEL_TRACES_EXPORTER": "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			p, err := Setup(context.Background(), "test", quiet)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := p.TracerProvider.(noop.TracerProvider); !ok || p.Enabled {
				t.Fatalf("tracer provider %T (enabled %v), want the no-op", p.TracerProvider, p.Enabled)
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestUnsupportedExportRefused(t *testing.T) {
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
		{"OTEL_TRACES_EXPORTER": "zipkin"},
	} {
		clearEnv(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		for k, v := range env {
			t.Setenv(k, v)
		}
		if _, err := Setup(context.Background(), "test", quiet); err == nil {
			t.Errorf("%v: accepted", env)
		}
	}
}

// TestExportsOverOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans reach
// the collector at its /v1/traces once the provider shuts down, under the
// default service name or OTEL_SERVICE_NAME.
func TestExportsOverOTLP(t *testing.T) {
	for _, tc := range []struct{ serviceName, want string }{{"", "statusbridge"}, {"payments-bridge", "payments-bridge"}} {
		clearEnv(t)
		got := make(chan *collectortrace.ExportTraceServiceRequest, 10)
		collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			req := &collectortrace.ExportTraceServiceRequest{}
			if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
				t.Errorf("collector got %s %s, not an OTLP/HTTP export", r.Method, r.URL.Path)
			}
			got <- req
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(nil)
		}))
		t.Cleanup(collector.Close)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
		if tc.serviceName != "" {
			t.Setenv("OTEL_SERVICE_NAME", tc.serviceName)
		}
		p, err := Setup(context.Background(), "v1.2.3", quiet)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Enabled {
			t.Fatal("tracing off with an endpoint set")
		}
		_, span := p.Tracer("test").Start(context.Background(), "check iak")
		span.End()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		var req *collectortrace.ExportTraceServiceRequest
		select {
		case req = <-got:
		default:
			t.Fatal("no export reached the collector by the end of Shutdown")
		}
		rs := req.GetResourceSpans()
		if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 || rs[0].GetScopeSpans()[0].GetSpans()[0].GetName() != "check iak" {
			t.Fatalf("export %v", req)
		}
		attrs := map[string]string{}
		for _, kv := range rs[0].GetResource().GetAttributes() {
			attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		if attrs["service.name"] != tc.want || attrs["service.version"] != "v1.2.3" {
			t.Errorf("resource %v, want service.name %s and service.version v1.2.3", attrs, tc.want)
		}
	}
}

// clearEnv unsets the variables these tests set, for the test's duration.
func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME",
		"OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER"} {
		t.Setenv(k, "")
	}
}
