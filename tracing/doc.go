// Package tracing owns the pure-Go core of meshwasm's tracing filter: reading
// and writing trace context (W3C Trace Context and B3), deciding whether a
// trace is sampled, enriching requests (baggage, headers Envoy's tracer can
// tag), the per-request access log line, route-group metrics, and the proxy's
// own spans exported as OTLP/HTTP JSON.
//
// It never talks to the proxy. The filter layer calls [Parse] once at plugin
// start, then per request [Tracer.Start] (request headers in, header
// mutations out) and [Tracer.Finish] (status and clock in), and hands
// finished hops to an [Exporter] whose batches it sends by callout from a
// tick. Random ids, time and host properties are injected, so everything here
// runs natively under go test.
//
// Specifications followed:
//   - W3C Trace Context: https://www.w3.org/TR/trace-context/
//   - W3C Baggage: https://www.w3.org/TR/baggage/
//   - B3: https://github.com/openzipkin/b3-propagation
//   - OTLP/HTTP JSON: https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding
//   - Ratio sampling compatible with OpenTelemetry's TraceIdRatioBased sampler:
//     https://opentelemetry.io/docs/specs/otel/trace/sdk/#traceidratiobased
package tracing
