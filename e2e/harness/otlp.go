package harness

import (
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/meshwasm/meshwasm/tracing/otlpjson"
)

// OTLPReceiver is an OTLP/HTTP trace collector for tests: it accepts
// ExportTraceServiceRequest on POST /v1/traces in both OTLP/HTTP encodings (binary
// protobuf, which Envoy's OpenTelemetry tracer sends, and JSON, which the meshwasm
// tracing filter sends), decodes them with the official OTLP types and records every
// span with its resource's service.name.
// See https://opentelemetry.io/docs/specs/otlp/#otlphttp
type OTLPReceiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	spans  []ReceivedSpan
	errors []string
}

// ReceivedSpan is one span a collector client exported.
type ReceivedSpan struct {
	// Service is the resource's service.name attribute.
	Service string
	// Encoding is "json" or "protobuf".
	Encoding string
	Span     *tracepb.Span
}

// TraceID is the span's trace id in lowercase hex.
func (s ReceivedSpan) TraceID() string { return hex.EncodeToString(s.Span.GetTraceId()) }

// SpanID is the span's id in lowercase hex.
func (s ReceivedSpan) SpanID() string { return hex.EncodeToString(s.Span.GetSpanId()) }

// ParentSpanID is the span's parent id in lowercase hex ("" for a root span).
func (s ReceivedSpan) ParentSpanID() string { return hex.EncodeToString(s.Span.GetParentSpanId()) }

// Attribute returns a string or integer attribute of the span, printed.
func (s ReceivedSpan) Attribute(key string) (string, bool) {
	for _, kv := range s.Span.GetAttributes() {
		if kv.GetKey() != key {
			continue
		}
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue, true
		case *commonpb.AnyValue_IntValue:
			return fmt.Sprint(v.IntValue), true
		}
		return kv.GetValue().String(), true
	}
	return "", false
}

// StartOTLP starts a receiver on a loopback port; it stops when the test ends.
func StartOTLP(t testing.TB) *OTLPReceiver {
	t.Helper()
	r := &OTLPReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- otlp receiver: %d spans, errors: %v", len(r.Spans()), r.Errors())
		}
	})
	return r
}

// Addr is the receiver's host:port.
func (r *OTLPReceiver) Addr() string { return r.srv.Listener.Addr().(*net.TCPAddr).String() }

// Close stops the receiver early, e.g. to stand in for a collector that is down.
func (r *OTLPReceiver) Close() { r.srv.Close() }

// Cluster is an Envoy cluster for the receiver, named name.
func (r *OTLPReceiver) Cluster(name string) Cluster { return Cluster{Name: name, Addr: r.Addr()} }

// Spans returns the spans received so far.
func (r *OTLPReceiver) Spans() []ReceivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ReceivedSpan(nil), r.spans...)
}

// Errors lists the requests the receiver could not decode; a test should expect none.
func (r *OTLPReceiver) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

func (r *OTLPReceiver) fail(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.errors = append(r.errors, msg)
	r.mu.Unlock()
	http.Error(w, msg, http.StatusBadRequest)
}

func (r *OTLPReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		r.fail(w, "unexpected %s %s", req.Method, req.URL.Path)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.fail(w, "read body: %v", err)
		return
	}
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	var (
		msg      *coltracepb.ExportTraceServiceRequest
		encoding string
	)
	switch ct {
	case "application/json":
		encoding = "json"
		msg, err = otlpjson.Decode(body)
	case "application/x-protobuf":
		encoding = "protobuf"
		msg = &coltracepb.ExportTraceServiceRequest{}
		err = proto.Unmarshal(body, msg)
	default:
		err = fmt.Errorf("content type %q", ct)
	}
	if err != nil {
		r.fail(w, "decode %s: %v: %q", ct, err, body)
		return
	}
	r.mu.Lock()
	for _, rs := range msg.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, ReceivedSpan{Service: service, Encoding: encoding, Span: s})
			}
		}
	}
	r.mu.Unlock()
	// An empty ExportTraceServiceResponse: full success.
	if encoding == "json" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}
