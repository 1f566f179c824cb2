package tracing

// MetricKind is the proxy-wasm metric type to define.
type MetricKind uint8

const (
	// Counter only goes up.
	Counter MetricKind = iota
	// Histogram records values (Envoy keeps the buckets).
	Histogram
)

// Metric is one metric the filter defines at plugin start.
type Metric struct {
	Name string
	Kind MetricKind
}

// Indices into Tracer.Metrics of the export counters.
const (
	MetricSpansExported = iota
	MetricSpansDropped
	MetricExportFailures
	metricsFixed
)

// statusClasses are the per-group request counters, Envoy style; "rq_other"
// counts requests that ended without a response status.
var statusClasses = [...]string{"rq_1xx", "rq_2xx", "rq_3xx", "rq_4xx", "rq_5xx", "rq_other"}

const perGroup = len(statusClasses) + 1

// metricPrefix keeps the names stable: dashboards depend on them.
const metricPrefix = "meshwasm.tracing."

func buildMetrics(groups []RouteGroup) []Metric {
	m := []Metric{
		{Name: metricPrefix + "spans_exported", Kind: Counter},
		{Name: metricPrefix + "spans_dropped", Kind: Counter},
		{Name: metricPrefix + "export_failures", Kind: Counter},
	}
	names := make([]string, 0, len(groups)+1)
	for _, g := range groups {
		names = append(names, g.Name)
	}
	names = append(names, DefaultGroup)
	for _, g := range names {
		for _, c := range statusClasses {
			m = append(m, Metric{Name: metricPrefix + g + "." + c, Kind: Counter})
		}
		m = append(m, Metric{Name: metricPrefix + g + ".rq_time_ms", Kind: Histogram})
	}
	return m
}

// Metrics lists every metric, in the order the indices returned by
// RequestMetrics and the Metric* constants refer to.
func (t *Tracer) Metrics() []Metric { return t.metrics }

// RequestMetrics says which counter to increment for a finished hop (its
// route group and status class), which histogram to record into, and the
// value to record (milliseconds).
func (t *Tracer) RequestMetrics(h *Hop) (counter, histogram int, latencyMs uint64) {
	class := len(statusClasses) - 1
	if h.Status >= 100 && h.Status < 600 {
		class = h.Status/100 - 1
	}
	base := metricsFixed + h.Group*perGroup
	return base + class, base + perGroup - 1, uint64(h.Duration().Milliseconds())
}
