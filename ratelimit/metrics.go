package ratelimit

import "strconv"

// Metric is one per-rule counter.
type Metric uint8

// The per-rule metrics. Their String values are stable metric name suffixes.
const (
	// MetricAllowed counts requests the rule admitted.
	MetricAllowed Metric = iota
	// MetricLimited counts requests the rule denied.
	MetricLimited
	// MetricShadowLimited counts requests a shadow rule would have denied.
	MetricShadowLimited
	// MetricDelayed counts requests paused by shaping (charged to the rule
	// with the longest delay).
	MetricDelayed
	// MetricGlobalErrors counts failed, timed-out or unreadable replies of
	// the global service.
	MetricGlobalErrors
	// MetricCASRetries counts shared-data writes lost to another worker.
	MetricCASRetries
	// MetricEvictions counts idle keys whose slot was handed to a new key.
	MetricEvictions
	// MetricOverflows counts requests whose key found no slot and was counted
	// in the rule's shared overflow bucket.
	MetricOverflows
	// MetricStoreErrors counts shared-data failures and exhausted CAS
	// retries; the request then follows onStoreError.
	MetricStoreErrors
	numMetrics
)

var metricNames = [numMetrics]string{"allowed", "limited", "shadow_limited", "delayed", "global_errors", "cas_retries", "evictions", "overflows", "store_errors"}

func (m Metric) String() string {
	if m < numMetrics {
		return metricNames[m]
	}
	return "metric(" + strconv.Itoa(int(m)) + ")"
}

// Metrics lists every metric, for defining them at plugin start.
func Metrics() []Metric {
	out := make([]Metric, numMetrics)
	for i := range out {
		out[i] = Metric(i)
	}
	return out
}

// Recorder receives metric increments. The filter implements it over
// proxy-wasm counters named, for example,
// "meshwasm_ratelimit.<rule name>.<metric>".
type Recorder interface {
	Count(rule int, m Metric, n uint64)
}
