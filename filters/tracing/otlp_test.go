package tracing_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// decodeOTLP reads an OTLP/HTTP JSON body with the official types. OTLP JSON
// differs from plain protojson only in its ids (hex, not base64), so those are
// converted first; every other field must be exactly what protojson accepts.
func decodeOTLP(t testing.TB, body []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	var doc any
	require.NoError(t, json.Unmarshal(body, &doc), "%s", body)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
					raw, err := hex.DecodeString(s)
					require.NoError(t, err)
					x[k] = base64.StdEncoding.EncodeToString(raw)
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	conv, err := json.Marshal(doc)
	require.NoError(t, err)
	var req coltracepb.ExportTraceServiceRequest
	require.NoError(t, protojson.Unmarshal(conv, &req), "%s", body)
	return &req
}

// spansOf flattens a request's spans.
func spansOf(req *coltracepb.ExportTraceServiceRequest) []*tracepb.Span {
	var out []*tracepb.Span
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			out = append(out, ss.GetSpans()...)
		}
	}
	return out
}

// attrs turns OTLP attributes into a map of printed values.
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = fmt.Sprint(v.IntValue)
		}
	}
	return m
}
