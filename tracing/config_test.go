package tracing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse_Defaults(t *testing.T) {
	tr, err := Parse(nil)
	require.NoError(t, err)
	require.Equal(t, []Format{FormatW3C, FormatB3, FormatB3Multi}, tr.extract)
	require.Equal(t, []Format{FormatW3C, FormatB3Multi}, tr.inject)
	require.True(t, tr.removeOthers)
	require.Equal(t, TracestateMinLength, tr.stateMax)
	require.Equal(t, Sampler{Root: NewRatio(1), ParentBased: true}, tr.sampler)
	require.False(t, tr.LogEnabled())
	require.Nil(t, tr.Export())
	require.Nil(t, tr.NewExporter())
	require.Equal(t, []Metric{
		{Name: "meshwasm.tracing.spans_exported", Kind: Counter},
		{Name: "meshwasm.tracing.spans_dropped", Kind: Counter},
		{Name: "meshwasm.tracing.export_failures", Kind: Counter},
		{Name: "meshwasm.tracing.default.rq_1xx", Kind: Counter},
		{Name: "meshwasm.tracing.default.rq_2xx", Kind: Counter},
		{Name: "meshwasm.tracing.default.rq_3xx", Kind: Counter},
		{Name: "meshwasm.tracing.default.rq_4xx", Kind: Counter},
		{Name: "meshwasm.tracing.default.rq_5xx", Kind: Counter},
		{Name: "meshwasm.tracing.default.rq_other", Kind: Counter},
		{Name: "meshwasm.tracing.default.rq_time_ms", Kind: Histogram},
	}, tr.Metrics())
}

// seedConfig is the README's example: the seeds' 10% sampling, x-user-id as
// a tag, x-b3-sampled and x-debug forcing, payments always traced.
const seedConfig = `{
  "extract": ["w3c", "b3", "b3multi"],
  "inject": ["w3c", "b3multi"],
  "sampling": {
    "ratio": 0.1,
    "rules": [
      {"header": "X-Debug", "ratio": 1},
      {"path": "/api/payments/*", "ratio": 1},
      {"path": "/health", "ratio": 0}
    ]
  },
  "enrich": [
    {"fromHeader": "x-user-id", "toBaggage": "user.id"},
    {"fromBaggage": "user.id", "toHeader": "x-user-id"}
  ],
  "response": {"traceresponse": true, "traceIdHeader": "x-trace-id"},
  "attributes": [
    {"name": "user.id", "header": "x-user-id"},
    {"name": "upstream.version", "header": "x-route-version"},
    {"name": "authz.policy", "property": ["filter_state", "meshwasm.authz.policy"]},
    {"name": "route.name", "property": "xds.route_name"}
  ],
  "accessLog": {"fields": ["trace_id", "span_id", "method", "path", "route", "status", "duration_ms", "sampled", "sampling_reason", "user.id", "upstream.version", "authz.policy"]},
  "routeGroups": [{"name": "payments", "paths": ["/api/payments/*"]}, {"name": "orders", "paths": ["/api/orders", "/api/orders/*"]}],
  "export": {"cluster": "otel-collector", "batchSize": 2, "queueSize": 4, "flushPeriod": "1s", "timeout": "2s", "serviceName": "orders-sidecar", "resource": {"deployment.environment": "prod"}}
}`

func TestParse_Full(t *testing.T) {
	tr, err := Parse([]byte(seedConfig))
	require.NoError(t, err)
	require.Equal(t, NewRatio(0.1), tr.sampler.Root)
	require.Len(t, tr.sampler.Rules, 3)
	require.Equal(t, "x-debug", tr.sampler.Rules[0].Header)
	require.Equal(t, "/api/payments/*", tr.sampler.Rules[1].Path.String())
	require.Equal(t, []enrichment{
		{fromHeader: "x-user-id", toBaggage: "user.id"},
		{fromBaggage: "user.id", toHeader: "x-user-id"},
	}, tr.enrich)
	require.Equal(t, response{traceresponse: true, traceIDHeader: "x-trace-id"}, tr.response)
	require.Equal(t, []Attribute{
		{Name: "user.id", Header: "x-user-id"},
		{Name: "upstream.version", Header: "x-route-version"},
		{Name: "authz.policy", Property: []string{"filter_state", "meshwasm.authz.policy"}},
		{Name: "route.name", Property: []string{"xds", "route_name"}},
	}, tr.Attributes())
	require.True(t, tr.LogEnabled())
	require.Equal(t, &ExportConfig{
		Cluster: "otel-collector", Authority: "otel-collector", Path: "/v1/traces", BatchSize: 2, QueueSize: 4,
		FlushPeriod: time.Second, Timeout: 2 * time.Second, MaxAttempts: 3, ServiceName: "orders-sidecar",
		Resource: []KeyValue{{"deployment.environment", "prod"}},
	}, tr.Export())
	require.Len(t, tr.Metrics(), 3+3*7)
	require.Equal(t, "meshwasm.tracing.payments.rq_2xx", tr.Metrics()[3+1].Name)
	require.Equal(t, "meshwasm.tracing.orders.rq_time_ms", tr.Metrics()[3+7+6].Name)
	require.Equal(t, "tracing: extract [w3c b3 b3multi], inject [w3c b3multi], 3 sampling rules, 4 attributes, access log true, export true", tr.String())
}

func TestParse_AccessLogDefaultFields(t *testing.T) {
	tr, err := Parse([]byte(`{"attributes":[{"name":"user.id","header":"x-user-id"}],"accessLog":{}}`))
	require.NoError(t, err)
	var names []string
	for _, f := range tr.log {
		names = append(names, f.name)
	}
	require.Equal(t, []string{"trace_id", "span_id", "method", "path", "status", "duration_ms", "user.id"}, names)
}

func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "invalid json", in: `{`, want: "configuration: invalid JSON"},
		{name: "unknown key", in: `{"sampler":{}}`, want: "sampler: unknown key"},
		{name: "extract not array", in: `{"extract":"w3c"}`, want: "extract: must be an array"},
		{name: "extract empty", in: `{"extract":[]}`, want: "extract: at least one format required"},
		{name: "extract unknown", in: `{"extract":["w3c","jaeger"]}`, want: `extract[1]: unknown value "jaeger" (want one of [w3c b3 b3multi])`},
		{name: "extract null", in: `{"extract":[null]}`, want: "extract[0]: required"},
		{name: "inject duplicate", in: `{"inject":["w3c","w3c"]}`, want: `inject[1]: duplicate format "w3c"`},
		{name: "b3multi before b3", in: `{"extract":["b3multi","b3"]}`, want: `extract[1]: "b3" must come before "b3multi": the single header takes precedence`},
		{name: "tracestate too small", in: `{"tracestateMaxLength":100}`, want: "tracestateMaxLength: must be between 512 and 8192"},
		{name: "ratio too big", in: `{"sampling":{"ratio":1.5}}`, want: "sampling.ratio: must be between 0 and 1"},
		{name: "ratio string", in: `{"sampling":{"ratio":"10%"}}`, want: "sampling.ratio: must be a number"},
		{name: "sampling unknown key", in: `{"sampling":{"rate":0.1}}`, want: "sampling.rate: unknown key"},
		{name: "rule empty", in: `{"sampling":{"rules":[{}]}}`, want: `sampling.rules[0]: needs "header" or "path"`},
		{name: "rule null", in: `{"sampling":{"rules":[null]}}`, want: "sampling.rules[0]: must be an object"},
		{name: "rule equals without header", in: `{"sampling":{"rules":[{"path":"/a","equals":"1"}]}}`, want: `sampling.rules[0].equals: needs "header"`},
		{name: "rule bad header", in: `{"sampling":{"rules":[{"header":"x debug"}]}}`, want: `sampling.rules[0].header: invalid header name "x debug"`},
		{name: "rule pseudo header", in: `{"sampling":{"rules":[{"header":":path"}]}}`, want: `sampling.rules[0].header: invalid header name ":path"`},
		{name: "rule bad path", in: `{"sampling":{"rules":[{"path":"api/*"}]}}`, want: `sampling.rules[0].path: must start with "/" or "*"`},
		{name: "rule ratio", in: `{"sampling":{"rules":[{"path":"/a","ratio":-1}]}}`, want: "sampling.rules[0].ratio: must be between 0 and 1"},
		{name: "enrich no source", in: `{"enrich":[{"toBaggage":"a"}]}`, want: `enrich[0]: needs exactly one of "fromHeader" and "fromBaggage"`},
		{name: "enrich two sources", in: `{"enrich":[{"fromHeader":"a","fromBaggage":"b","toHeader":"c"}]}`, want: `enrich[0]: needs exactly one of "fromHeader" and "fromBaggage"`},
		{name: "enrich no destination", in: `{"enrich":[{"fromHeader":"a"}]}`, want: `enrich[0]: needs "toBaggage" or "toHeader"`},
		{name: "enrich bad baggage key", in: `{"enrich":[{"fromHeader":"a","toBaggage":"user id"}]}`, want: `enrich[0].toBaggage: invalid baggage key "user id"`},
		{name: "enrich trace header", in: `{"enrich":[{"fromHeader":"a","toHeader":"traceparent"}]}`, want: `enrich[0].toHeader: "traceparent" is written by the propagation formats`},
		{name: "response unknown", in: `{"response":{"traceResponse":true}}`, want: "response.traceResponse: unknown key"},
		{name: "response header", in: `{"response":{"traceIdHeader":""}}`, want: "response.traceIdHeader: empty string"},
		{name: "attribute no name", in: `{"attributes":[{"header":"x"}]}`, want: "attributes[0].name: required"},
		{name: "attribute builtin name", in: `{"attributes":[{"name":"status","header":"x"}]}`, want: `attributes[0].name: "status" is a built-in access log field`},
		{name: "attribute duplicate", in: `{"attributes":[{"name":"a","header":"x"},{"name":"a","header":"y"}]}`, want: `attributes[1].name: duplicate attribute "a"`},
		{name: "attribute no source", in: `{"attributes":[{"name":"a"}]}`, want: `attributes[0]: needs exactly one of "header" and "property"`},
		{name: "attribute both sources", in: `{"attributes":[{"name":"a","header":"x","property":"y"}]}`, want: `attributes[0]: needs exactly one of "header" and "property"`},
		{name: "attribute empty segment", in: `{"attributes":[{"name":"a","property":"xds..x"}]}`, want: `attributes[0].property: empty segment in property path "xds..x"`},
		{name: "attribute empty array", in: `{"attributes":[{"name":"a","property":[]}]}`, want: "attributes[0].property: empty property path"},
		{name: "attribute array element", in: `{"attributes":[{"name":"a","property":["x",""]}]}`, want: "attributes[0].property[1]: empty string"},
		{name: "log unknown field", in: `{"accessLog":{"fields":["trace_id","user"]}}`, want: `accessLog.fields[1]: unknown field "user" (not built in, not an attribute)`},
		{name: "log duplicate field", in: `{"accessLog":{"fields":["status","status"]}}`, want: `accessLog.fields[1]: duplicate field "status"`},
		{name: "log empty fields", in: `{"accessLog":{"fields":[]}}`, want: "accessLog.fields: at least one field required"},
		{name: "log not object", in: `{"accessLog":true}`, want: "accessLog: must be an object"},
		{name: "group bad name", in: `{"routeGroups":[{"name":"Pay Ments","paths":["/p"]}]}`, want: `routeGroups[0].name: invalid group name "Pay Ments" (want [a-z0-9_-], not "default")`},
		{name: "group default", in: `{"routeGroups":[{"name":"default","paths":["/p"]}]}`, want: `routeGroups[0].name: invalid group name "default" (want [a-z0-9_-], not "default")`},
		{name: "group duplicate", in: `{"routeGroups":[{"name":"a","paths":["/a"]},{"name":"a","paths":["/b"]}]}`, want: `routeGroups[1].name: duplicate group "a"`},
		{name: "group no paths", in: `{"routeGroups":[{"name":"a"}]}`, want: "routeGroups[0].paths: at least one path required"},
		{name: "group bad path", in: `{"routeGroups":[{"name":"a","paths":["x"]}]}`, want: `routeGroups[0].paths[0]: must start with "/" or "*"`},
		{name: "export no cluster", in: `{"export":{}}`, want: "export.cluster: required"},
		{name: "export bad path", in: `{"export":{"cluster":"c","path":"v1/traces"}}`, want: `export.path: must start with "/"`},
		{name: "export batch", in: `{"export":{"cluster":"c","batchSize":0}}`, want: "export.batchSize: must be between 1 and 4096"},
		{name: "export queue below batch", in: `{"export":{"cluster":"c","batchSize":10,"queueSize":5}}`, want: "export.queueSize: must be at least batchSize (10)"},
		{name: "export period", in: `{"export":{"cluster":"c","flushPeriod":"1ms"}}`, want: "export.flushPeriod: must be between 10ms and 1m0s"},
		{name: "export timeout", in: `{"export":{"cluster":"c","timeout":"soon"}}`, want: `export.timeout: invalid duration "soon"`},
		{name: "export attempts", in: `{"export":{"cluster":"c","maxAttempts":0}}`, want: "export.maxAttempts: must be between 1 and 10"},
		{name: "export service.name in resource", in: `{"export":{"cluster":"c","resource":{"service.name":"x"}}}`, want: `export.resource.service.name: invalid resource key "service.name" (use "serviceName" for service.name)`},
		{name: "export resource value", in: `{"export":{"cluster":"c","resource":{"k":1}}}`, want: "export.resource.k: must be a string"},
		{name: "export unknown", in: `{"export":{"cluster":"c","endpoint":"x"}}`, want: "export.endpoint: unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Parse([]byte(tc.in))
			require.EqualError(t, err, tc.want)
			require.Nil(t, tr)
		})
	}
}
