package authz

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// extProvider is one HTTP external authorization service (Istio's
// envoyExtAuthzHttp extension provider, addressed by an Envoy cluster).
type extProvider struct {
	index         int
	name          string
	cluster       string
	authority     string // empty: the request's :authority, as Envoy sends it
	pathPrefix    string
	timeout       time.Duration
	failOpen      bool
	statusOnError int
	include       []string    // request headers forwarded in the check
	additional    [][2]string // fixed headers added to the check
	toUpstream    values      // reply headers copied upstream on allow
	toDownAllow   values      // reply headers copied to the client on allow
	toDownDeny    values      // reply headers copied to the client on deny

	cacheTTL  time.Duration // 0: no cache
	cacheKeys []string
	cacheSize int
	cacheNS   string // shared-data key prefix
}

const maxDenyBody = 8 << 10

func parseExtProviders(n confjson.Node) ([]*extProvider, error) {
	elems, err := n.Array()
	if err != nil {
		return nil, err
	}
	var out []*extProvider
	names := map[string]bool{}
	for i, e := range elems {
		if !e.Exists() {
			return nil, e.Errorf("must be an object")
		}
		if err := e.Object("name", "envoyExtAuthzHttp"); err != nil {
			return nil, err
		}
		name, err := e.Get("name").String()
		if err != nil {
			return nil, err
		}
		if names[name] {
			return nil, e.Get("name").Errorf("duplicate provider name %q", name)
		}
		names[name] = true
		p, err := parseExtAuthzHTTP(e.Get("envoyExtAuthzHttp"))
		if err != nil {
			return nil, err
		}
		p.index, p.name = i, name
		p.cacheNS = "meshwasm.authz.extauthz." + shortHash(e.Raw()) + "."
		out = append(out, p)
	}
	return out, nil
}

func parseExtAuthzHTTP(n confjson.Node) (*extProvider, error) {
	if !n.Exists() {
		return nil, n.Errorf("required")
	}
	if err := n.Object("cluster", "authority", "pathPrefix", "timeout", "failOpen", "statusOnError",
		"includeRequestHeadersInCheck", "includeAdditionalHeadersInCheck", "headersToUpstreamOnAllow",
		"headersToDownstreamOnAllow", "headersToDownstreamOnDeny", "cache"); err != nil {
		return nil, err
	}
	p := &extProvider{}
	var err error
	if p.cluster, err = n.Get("cluster").String(); err != nil {
		return nil, err
	}
	if p.authority, err = n.Get("authority").OptString(""); err != nil {
		return nil, err
	}
	if p.pathPrefix, err = n.Get("pathPrefix").OptString(""); err != nil {
		return nil, err
	}
	if p.pathPrefix != "" && !strings.HasPrefix(p.pathPrefix, "/") {
		return nil, n.Get("pathPrefix").Errorf("must start with '/'")
	}
	if p.timeout, err = n.Get("timeout").Duration(200*time.Millisecond, time.Millisecond, time.Minute); err != nil {
		return nil, err
	}
	if p.failOpen, err = n.Get("failOpen").Bool(false); err != nil {
		return nil, err
	}
	st, err := n.Get("statusOnError").Int(403, 200, 599)
	if err != nil {
		return nil, err
	}
	p.statusOnError = int(st)
	if p.include, err = headerNames(n.Get("includeRequestHeadersInCheck")); err != nil {
		return nil, err
	}
	members, err := n.Get("includeAdditionalHeadersInCheck").Members()
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if !validHeaderName(m.Key) {
			return nil, m.Value.Errorf("invalid header name")
		}
		v, err := m.Value.String()
		if err != nil {
			return nil, err
		}
		p.additional = append(p.additional, [2]string{strings.ToLower(m.Key), v})
	}
	for _, f := range []struct {
		key string
		dst *values
	}{{"headersToUpstreamOnAllow", &p.toUpstream}, {"headersToDownstreamOnAllow", &p.toDownAllow}, {"headersToDownstreamOnDeny", &p.toDownDeny}} {
		if *f.dst, err = compileValues(n.Get(f.key), kindHost); err != nil {
			return nil, err
		}
	}
	c := n.Get("cache")
	if err := c.Object("ttl", "keyHeaders", "maxEntries"); err != nil {
		return nil, err
	}
	if c.Exists() {
		if p.cacheTTL, err = c.Get("ttl").Duration(0, time.Second, 24*time.Hour); err != nil {
			return nil, err
		}
		if p.cacheTTL == 0 {
			return nil, c.Get("ttl").Errorf("required")
		}
		if p.cacheKeys, err = headerNames(c.Get("keyHeaders")); err != nil {
			return nil, err
		}
		if len(p.cacheKeys) == 0 {
			return nil, c.Get("keyHeaders").Errorf("required")
		}
		size, err := c.Get("maxEntries").Int(1024, 1, 1<<16)
		if err != nil {
			return nil, err
		}
		p.cacheSize = int(size)
	}
	return p, nil
}

// headerNames reads header names; pseudo-headers (:path) are allowed for
// cache keys.
func headerNames(n confjson.Node) ([]string, error) {
	elems, err := n.Array()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range elems {
		s, err := e.String()
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(s, ":")
		if !validHeaderName(name) || (name != s && s != ":path" && s != ":method" && s != ":authority") {
			return nil, e.Errorf("invalid header name %q", s)
		}
		out = append(out, strings.ToLower(s))
	}
	return out, nil
}

// Callout is an external authorization check the filter must make:
// dispatch_http_call(Cluster, Headers, empty body, Timeout). Hand the reply,
// or Reply{Failed: true}, to [Engine.Resolve].
type Callout struct {
	Provider string
	Cluster  string
	Headers  [][2]string
	Timeout  time.Duration
}

func (p *extProvider) callout(r *Request, dst [][2]string) Callout {
	authority := p.authority
	if authority == "" {
		authority = r.Authority
	}
	dst = append(dst[:0], [2]string{":method", r.Method}, [2]string{":path", p.pathPrefix + r.Path},
		[2]string{":authority", authority}, [2]string{"content-length", "0"})
	if r.Headers != nil {
		if v, ok := r.Headers.Header("authorization"); ok {
			dst = append(dst, [2]string{"authorization", v})
		}
		for _, h := range p.include {
			if h == "authorization" {
				continue
			}
			if v, ok := r.Headers.Header(h); ok {
				dst = append(dst, [2]string{h, v})
			}
		}
	}
	dst = append(dst, p.additional...)
	return Callout{Provider: p.name, Cluster: p.cluster, Headers: dst, Timeout: p.timeout}
}

// cacheKey hashes the configured key headers of a request.
func (p *extProvider) cacheKey(r *Request) [32]byte {
	h := sha256.New()
	for _, name := range p.cacheKeys {
		var v string
		ok := true
		switch name {
		case ":path":
			v = r.Path
		case ":method":
			v = r.Method
		case ":authority":
			v = r.Authority
		default:
			if r.Headers == nil {
				ok = false
			} else {
				v, ok = r.Headers.Header(name)
			}
		}
		var lens [9]byte
		binary.BigEndian.PutUint64(lens[:8], uint64(len(v)))
		if ok {
			lens[8] = 1
		}
		h.Write([]byte(name))
		h.Write(lens[:])
		h.Write([]byte(v))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// extVerdict is an external authorization outcome, as cached.
type extVerdict struct {
	Allow    bool        `json:"allow"`
	Status   int         `json:"status,omitempty"`
	Body     string      `json:"body,omitempty"`
	Upstream [][2]string `json:"up,omitempty"`
	Down     [][2]string `json:"down,omitempty"`
}

// parseReply applies Envoy's HTTP ext_authz rules: 200 allows and copies
// the configured headers upstream; any other status denies with that status,
// the reply body and the configured downstream headers. ok is false for a
// failed callout or a reply without a valid status.
func (p *extProvider) parseReply(r Reply) (v extVerdict, ok bool) {
	if r.Failed {
		return extVerdict{}, false
	}
	status, ok := r.Status()
	if !ok || status < 200 {
		return extVerdict{}, false // 1xx cannot be a final answer
	}
	if status == 200 {
		return extVerdict{Allow: true, Upstream: pick(r.Headers, &p.toUpstream), Down: pick(r.Headers, &p.toDownAllow)}, true
	}
	body := r.Body
	if len(body) > maxDenyBody {
		body = body[:maxDenyBody]
	}
	return extVerdict{Status: status, Body: string(body), Down: pick(r.Headers, &p.toDownDeny)}, true
}

// pick copies the reply headers whose names match; pseudo-headers and
// framing headers never leave the reply.
func pick(hs [][2]string, want *values) [][2]string {
	var out [][2]string
	for _, h := range hs {
		name := strings.ToLower(h[0])
		if strings.HasPrefix(name, ":") || name == "content-length" || name == "transfer-encoding" || name == "connection" {
			continue
		}
		for _, m := range want.strs {
			if m.matchFold(name) {
				out = append(out, [2]string{name, h[1]})
				break
			}
		}
	}
	return out
}

// extCacheEntry is the shared-data form of a cached verdict. Entries live in
// a fixed number of slots per provider (the key space stays bounded); Key
// guards against slot collisions.
type extCacheEntry struct {
	Key     string     `json:"k"`
	Expires int64      `json:"exp"`
	Verdict extVerdict `json:"v"`
}

func (p *extProvider) slot(key [32]byte) string {
	return p.cacheNS + strconv.FormatUint(binary.BigEndian.Uint64(key[:8])%uint64(p.cacheSize), 10)
}

func (e *Engine) cacheGet(p *extProvider, key [32]byte, now time.Time) (extVerdict, bool) {
	raw, _, ok, err := e.shared.Get(p.slot(key))
	if err != nil || !ok {
		return extVerdict{}, false
	}
	var ent extCacheEntry
	if json.Unmarshal(raw, &ent) != nil || ent.Key != hex.EncodeToString(key[:]) || now.UnixNano() >= ent.Expires {
		return extVerdict{}, false
	}
	return ent.Verdict, true
}

func (e *Engine) cachePut(p *extProvider, key [32]byte, v extVerdict, now time.Time) {
	raw, err := json.Marshal(extCacheEntry{Key: hex.EncodeToString(key[:]), Expires: now.Add(p.cacheTTL).UnixNano(), Verdict: v})
	if err != nil {
		return
	}
	_ = e.shared.Set(p.slot(key), raw, 0) // last writer wins: any recent verdict will do
}
