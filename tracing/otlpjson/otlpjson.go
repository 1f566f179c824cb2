// Package otlpjson decodes OTLP/HTTP JSON export requests with the official
// OTLP types, for the tests and the e2e receiver that check what the tracing
// filter exports. The filter itself encodes by hand (the module must stay
// small), so this is the independent check that its output is valid OTLP.
// See https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding.
package otlpjson

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Decode reads an OTLP/HTTP JSON body with the official types. OTLP JSON
// differs from plain protojson only in trace and span ids (hex, not base64), which
// are converted first; every other field must be exactly what protojson accepts.
func Decode(body []byte) (*coltracepb.ExportTraceServiceRequest, error) {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	var convErr error
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
					raw, err := hex.DecodeString(s)
					if err != nil && convErr == nil {
						convErr = fmt.Errorf("%s: %w", k, err)
					}
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
	if convErr != nil {
		return nil, convErr
	}
	conv, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := protojson.Unmarshal(conv, &req); err != nil {
		return nil, err
	}
	return &req, nil
}
