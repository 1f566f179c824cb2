package authz

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hdrs is a header map; lookups do not allocate.
type hdrs map[string]string

func (h hdrs) Header(name string) (string, bool) {
	v, ok := h[name]
	return v, ok
}

// fakeClock is a settable clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func mustParse(t testing.TB, cfg string) *Config {
	t.Helper()
	c, err := Parse([]byte(cfg))
	require.NoError(t, err)
	return c
}

func mustEngine(t testing.TB, cfg string) *Engine {
	t.Helper()
	return New(mustParse(t, cfg), Options{})
}

// mtlsReq is a request from order-service in production over mTLS.
func mtlsReq() *Request {
	return &Request{
		Method:             "POST",
		Path:               "/api/payments/42",
		Authority:          "payment-service:8080",
		Headers:            hdrs{"x-user-role": "admin"},
		SourceAddress:      "10.1.2.3:51000",
		DestinationAddress: "10.9.9.9:8080",
		PeerURISAN:         "spiffe://cluster.local/ns/production/sa/order-service",
		MTLS:               true,
		SNI:                "outbound_.8080_._.payment-service.production.svc.cluster.local",
	}
}

func check(e *Engine, r *Request) Decision {
	var d Decision
	e.Check(r, &d)
	return d
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// checkReadingOnly checks r as the filter would fetch it: the connection
// properties the engine's policies do not read are left out. The decision
// must be the same as with every property present.
func checkReadingOnly(t testing.TB, e *Engine, r *Request) Decision {
	t.Helper()
	in := e.cfg.Reads()
	m := *r
	if !in.Source {
		m.SourceAddress = ""
	}
	if !in.Destination {
		m.DestinationAddress = ""
	}
	if !in.Peer {
		m.MTLS, m.PeerURISAN = false, ""
	}
	if !in.SNI {
		m.SNI = ""
	}
	return check(e, &m)
}
