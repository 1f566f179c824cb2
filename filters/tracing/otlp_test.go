package tracing_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/meshwasm/meshwasm/tracing/otlpjson"
)

// decodeOTLP reads an OTLP/HTTP JSON body with the official types.
func decodeOTLP(t testing.TB, body []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	req, err := otlpjson.Decode(body)
	require.NoError(t, err, "%s", body)
	return req
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
