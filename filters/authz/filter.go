// Package authz is the proxy-wasm wiring of meshwasm's authorization filter:
// it parses the configuration once at plugin start with the pure core in
// github.com/meshwasm/meshwasm/authz, fills one core Request per stream from
// Envoy's headers and connection properties, and carries out the decision:
// continue with the header changes, a local 400/401/403, or an HTTP callout to
// the external authorization service (CUSTOM) before deciding. The root
// context fetches remote JWKS through callouts at start and on every tick;
// workers share the keys and the ext-authz cache through Envoy shared data.
//
// See ../../authz/README.md ("Running it in Envoy") for the configuration,
// the Envoy and Istio snippets and the metric names.
package authz

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	core "github.com/meshwasm/meshwasm/authz"
	"github.com/meshwasm/meshwasm/filters/internal/hostview"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
)

// Name is the filter's root id and metric namespace.
const Name = "authz"

// Filter registers the authorization filter. A panic in its code answers
// 403: an authorization filter that cannot judge a request must refuse it
// (the registry logs the panic at critical level and counts it in
// meshwasm.authz.panics).
var Filter = registry.Filter{
	Name:       Name,
	NewStage:   func() registry.Stage { return &plugin{} },
	DenyStatus: 403,
}

// Metric names, documented in authz/README.md ("Running it in Envoy").
const (
	metricPrefix = "meshwasm." + Name + "."
	// MetricDefaultDenied counts requests denied because ALLOW policies
	// exist and none matched.
	MetricDefaultDenied = metricPrefix + "default.denied"
	// MetricBadRequest counts paths refused with 400 by normalization.
	MetricBadRequest = metricPrefix + "bad_request"
	// MetricJWKSFetched / MetricJWKSFetchErrors count remote key set
	// fetches that installed keys, and those that failed.
	MetricJWKSFetched     = metricPrefix + "jwks.fetched"
	MetricJWKSFetchErrors = metricPrefix + "jwks.fetch_errors"
	// MetricExtAuthzCalls, MetricExtAuthzCacheHits, MetricExtAuthzErrors
	// count external authorization callouts, verdicts served from the
	// shared cache, and checks that failed (timeout, reset, garbage).
	MetricExtAuthzCalls     = metricPrefix + "ext_authz.calls"
	MetricExtAuthzCacheHits = metricPrefix + "ext_authz.cache_hits"
	MetricExtAuthzErrors    = metricPrefix + "ext_authz.errors"
	// MetricHeaderErrors counts requests refused because a header change
	// the decision required failed.
	MetricHeaderErrors = metricPrefix + "header_errors"
)

// PolicyMetric is the counter of one policy outcome (allowed, denied,
// audited, dry_run_denied).
func PolicyMetric(policy string, o core.Outcome) string {
	return metricPrefix + policy + "." + o.String()
}

// JWTMetric is the counter of tokens refused for reason.
func JWTMetric(reason core.JWTFailure) string { return metricPrefix + "jwt." + reason.String() }

const (
	outcomes = 4 // core.Outcome values: allowed, denied, audited, dry_run_denied
	// tickPeriod paces remote JWKS refreshes; the engine decides what is
	// due, so a tick that finds nothing to do costs a shared-data read.
	tickPeriod = time.Second
	// maxJWKSBytes bounds what is read of a JWKS reply.
	maxJWKSBytes = 1 << 20
	// maxExtBody bounds what is read of an ext-authz reply body; the core
	// keeps at most 8 KiB of it for the denial.
	maxExtBody = 16 << 10
)

type plugin struct {
	engine *core.Engine
	// reads are the connection properties the policies use: the others are
	// never fetched.
	reads core.Inputs
	// logBuf holds the decision's debug line, reused across requests.
	logBuf []byte

	policy        []proxywasm.MetricCounter // policy*outcomes + outcome
	defaultDenied proxywasm.MetricCounter
	jwt           []proxywasm.MetricCounter // by core.JWTFailure
	badRequest    proxywasm.MetricCounter
	jwksFetched   proxywasm.MetricCounter
	jwksErrors    proxywasm.MetricCounter
	extCalls      proxywasm.MetricCounter
	extCacheHits  proxywasm.MetricCounter
	extErrors     proxywasm.MetricCounter
	headerErrors  proxywasm.MetricCounter

	providers []string
	fetches   []core.JWKSFetch
}

// Start parses the configuration, defines the metrics and starts the
// remote key set fetches.
func (p *plugin) Start(data []byte) (time.Duration, error) {
	cfg, err := core.Parse(data)
	if err != nil {
		return 0, fmt.Errorf("configuration refused: %w", err)
	}
	policies := cfg.Policies()
	for _, pi := range policies {
		for o := core.Outcome(0); o < outcomes; o++ {
			p.policy = append(p.policy, proxywasm.DefineCounterMetric(PolicyMetric(pi.Name, o)))
		}
	}
	p.defaultDenied = proxywasm.DefineCounterMetric(MetricDefaultDenied)
	reasons := core.JWTFailureReasons()
	p.jwt = make([]proxywasm.MetricCounter, int(reasons[len(reasons)-1])+1)
	for _, r := range reasons {
		p.jwt[r] = proxywasm.DefineCounterMetric(JWTMetric(r))
	}
	p.badRequest = proxywasm.DefineCounterMetric(MetricBadRequest)
	p.jwksFetched = proxywasm.DefineCounterMetric(MetricJWKSFetched)
	p.jwksErrors = proxywasm.DefineCounterMetric(MetricJWKSFetchErrors)
	p.extCalls = proxywasm.DefineCounterMetric(MetricExtAuthzCalls)
	p.extCacheHits = proxywasm.DefineCounterMetric(MetricExtAuthzCacheHits)
	p.extErrors = proxywasm.DefineCounterMetric(MetricExtAuthzErrors)
	p.headerErrors = proxywasm.DefineCounterMetric(MetricHeaderErrors)

	p.reads = cfg.Reads()
	p.engine = core.New(cfg, core.Options{
		Clock:  time.Now, // the VM's WASI clock: Envoy's wall clock
		Shared: hostview.SharedData{},
	})
	p.providers = cfg.JWTProviders()
	var tick time.Duration
	if len(p.providers) > 0 {
		// Inline key sets need no tick, but the engine tells remote ones
		// apart, and an idle tick is one shared-data read per provider.
		tick = tickPeriod
		p.fetchJWKS()
	}
	proxywasm.LogInfof("authz: started with %d policies and %d JWT providers", len(policies), len(p.providers))
	return tick, nil
}

func (p *plugin) NewStream(_ uint32, view *hostview.Request, resume func()) types.HttpContext {
	return &stream{plugin: p, view: view, resume: resume}
}

// OnTick adopts key sets other workers fetched and starts the fetches that
// are due on this worker.
func (p *plugin) OnTick() { p.fetchJWKS() }

// fetchJWKS dispatches the key set fetches the engine asks for. A fetch the
// host refuses (unknown cluster) is retried once the engine's lease runs
// out; until keys arrive, tokens fail verification (no_keys, 401).
func (p *plugin) fetchJWKS() {
	p.fetches = p.engine.Tick(p.fetches[:0])
	for _, f := range p.fetches {
		provider := f.Provider
		timeout := uint32(max(f.Timeout/time.Millisecond, 1))
		if _, err := proxywasm.DispatchHttpCall(f.Cluster, f.Headers, nil, nil, timeout,
			registry.Callback(Name, nil, func(numHeaders, bodySize, _ int) { p.onJWKSReply(provider, numHeaders, bodySize) })); err != nil {
			p.jwksErrors.Increment(1)
			proxywasm.LogErrorf("authz: jwks %s: dispatch to cluster %q: %v", p.providers[provider], f.Cluster, err)
		}
	}
}

// onJWKSReply runs in the root context; on a failed fetch the keys stay as
// they were.
func (p *plugin) onJWKSReply(provider, numHeaders, bodySize int) {
	reply := readReply(numHeaders, bodySize, maxJWKSBytes)
	if err := p.engine.JWKSReply(provider, reply); err != nil {
		p.jwksErrors.Increment(1)
		proxywasm.LogWarnf("authz: %v", err)
		return
	}
	p.jwksFetched.Increment(1)
	proxywasm.LogInfof("authz: jwks %s: keys installed", p.providers[provider])
}

// readReply turns the callout reply being delivered into the core's Reply.
func readReply(numHeaders, bodySize, maxBody int) core.Reply {
	r, ok := hostview.ReadReply(numHeaders, bodySize, maxBody)
	if !ok {
		return core.Reply{Failed: true}
	}
	return core.Reply{Headers: r.Headers, Body: r.Body}
}

// record turns a final decision into metrics and the debug log line.
func (p *plugin) record(d *core.Decision) {
	for _, m := range d.Marks {
		if m.Policy < 0 {
			p.defaultDenied.Increment(1)
			continue
		}
		if i := m.Policy*outcomes + int(m.Outcome); i < len(p.policy) {
			p.policy[i].Increment(1)
		}
	}
	switch d.Verdict {
	case core.Unauthenticated:
		if int(d.JWTFailure) < len(p.jwt) && d.JWTFailure != core.JWTOK {
			p.jwt[d.JWTFailure].Increment(1)
		}
	case core.BadRequest:
		p.badRequest.Increment(1)
	}
	if d.CustomCache {
		p.extCacheHits.Increment(1)
	}
	if d.CustomError {
		p.extErrors.Increment(1)
	}
	// Envoy cannot tell a plugin its log level (1.40 lacks
	// proxy_get_log_level), so the line is built on every request: into a
	// reused buffer, handed to the host without a copy.
	b := append(p.logBuf[:0], "authz: "...)
	b = append(b, d.Verdict.String()...)
	if d.Policy != "" {
		b = append(b, " policy="...)
		b = append(b, d.Policy...)
		b = append(b, " rule="...)
		b = strconv.AppendInt(b, int64(d.Rule), 10)
	}
	if d.Reason != "" {
		b = append(b, " reason="...)
		b = append(b, d.Reason...)
	}
	p.logBuf = b
	hostview.LogDebug(b)
}
