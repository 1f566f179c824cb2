package authz

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// JWTFailure is why a token was refused; its String is the metric suffix.
type JWTFailure uint8

// Token failure reasons.
const (
	JWTOK JWTFailure = iota
	JWTMalformed
	JWTAlgorithm     // alg none, HS*, or an alg no configured key allows
	JWTUnknownIssuer // no provider for the token's iss at that location
	JWTUnknownKID    // kid not in the provider's key set
	JWTNoKeys        // remote JWKS not fetched yet: fail closed
	JWTSignature     // signature does not verify
	JWTExpired       // exp + clockSkew is in the past
	JWTNotYetValid   // nbf - clockSkew is in the future
	JWTMissingExp    // requireExpiration and no exp
	JWTAudience      // aud does not intersect the provider's audiences
	jwtFailureCount
)

var jwtFailureNames = [...]string{"ok", "malformed", "algorithm", "unknown_issuer", "unknown_kid",
	"no_keys", "signature", "expired", "not_yet_valid", "missing_exp", "audience"}

func (f JWTFailure) String() string {
	if int(f) < len(jwtFailureNames) {
		return jwtFailureNames[f]
	}
	return "unknown"
}

// JWTFailureReasons lists every failure reason, for defining metrics up front.
func JWTFailureReasons() []JWTFailure {
	out := make([]JWTFailure, 0, jwtFailureCount-1)
	for f := JWTMalformed; f < jwtFailureCount; f++ {
		out = append(out, f)
	}
	return out
}

// allowedAlgs is the only set of algorithms a token may use. HMAC is absent
// on purpose: with a public key as the "secret" it is the classic forgery.
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.ES256, jose.ES384, jose.EdDSA,
}

const maxTokenBytes = 16 << 10

// tokenLocation is where a provider looks for a token.
type tokenLocation struct {
	header string // lowercase header name; empty for a query parameter
	prefix string // stripped from the header value (case-insensitive)
	param  string
}

type claimHeader struct {
	header, claim string
}

// provider is one compiled RequestAuthentication jwtRule.
type provider struct {
	index      int
	name       string
	issuer     string
	audiences  []string
	locations  []tokenLocation
	forward    bool
	outputs    []claimHeader
	requireExp bool

	inline []jose.JSONWebKey // inline JWKS; nil for a remote one

	// remote JWKS
	cluster   string
	authority string
	uriPath   string
	timeout   time.Duration
	refresh   time.Duration
	sharedKey string
}

// jwtConfig is the `jwt` section.
type jwtConfig struct {
	providers   []*provider
	clockSkew   time.Duration
	cacheSize   int
	minRefetch  time.Duration
	claimPaths  [][]string // claim paths referenced by `when`, indexed by cond.cid
	outputNames []string   // every outputClaimToHeaders header: always removed first
}

func parseJWT(n confjson.Node) (jwtConfig, error) {
	jc := jwtConfig{clockSkew: 60 * time.Second, cacheSize: 1024, minRefetch: 30 * time.Second}
	if err := n.Object("providers", "clockSkew", "cacheSize", "minRefetchInterval"); err != nil {
		return jc, err
	}
	var err error
	if jc.clockSkew, err = n.Get("clockSkew").Duration(60*time.Second, 0, time.Hour); err != nil {
		return jc, err
	}
	size, err := n.Get("cacheSize").Int(1024, 0, 1<<20)
	if err != nil {
		return jc, err
	}
	jc.cacheSize = int(size)
	if jc.minRefetch, err = n.Get("minRefetchInterval").Duration(30*time.Second, time.Second, 24*time.Hour); err != nil {
		return jc, err
	}
	elems, err := n.Get("providers").Array()
	if err != nil {
		return jc, err
	}
	names := map[string]bool{}
	for i, e := range elems {
		p, err := parseProvider(e, i)
		if err != nil {
			return jc, err
		}
		if names[p.name] {
			return jc, e.Get("name").Errorf("duplicate provider name %q", p.name)
		}
		names[p.name] = true
		jc.providers = append(jc.providers, p)
		for _, o := range p.outputs {
			jc.outputNames = appendUnique(jc.outputNames, o.header)
		}
	}
	return jc, nil
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func parseProvider(n confjson.Node, index int) (*provider, error) {
	if !n.Exists() {
		return nil, n.Errorf("must be an object")
	}
	if err := n.Object("name", "issuer", "audiences", "jwks", "jwksUri", "cluster", "timeout",
		"refreshInterval", "fromHeaders", "fromParams", "forwardOriginalToken",
		"outputClaimToHeaders", "requireExpiration"); err != nil {
		return nil, err
	}
	p := &provider{index: index}
	var err error
	if p.issuer, err = n.Get("issuer").String(); err != nil {
		return nil, err
	}
	if p.name, err = n.Get("name").OptString(p.issuer); err != nil {
		return nil, err
	}
	if p.audiences, err = n.Get("audiences").Strings(); err != nil {
		return nil, err
	}
	if p.forward, err = n.Get("forwardOriginalToken").Bool(false); err != nil {
		return nil, err
	}
	if p.requireExp, err = n.Get("requireExpiration").Bool(false); err != nil {
		return nil, err
	}
	if err := parseLocations(n, p); err != nil {
		return nil, err
	}
	outs, err := n.Get("outputClaimToHeaders").Array()
	if err != nil {
		return nil, err
	}
	for _, o := range outs {
		if err := o.Object("header", "claim"); err != nil {
			return nil, err
		}
		h, err := o.Get("header").String()
		if err != nil {
			return nil, err
		}
		if !validHeaderName(h) {
			return nil, o.Get("header").Errorf("invalid header name %q", h)
		}
		c, err := o.Get("claim").String()
		if err != nil {
			return nil, err
		}
		p.outputs = append(p.outputs, claimHeader{header: strings.ToLower(h), claim: c})
	}

	jwks, uri := n.Get("jwks"), n.Get("jwksUri")
	switch {
	case jwks.Exists() && uri.Exists():
		return nil, n.Errorf("set either jwks or jwksUri, not both")
	case jwks.Exists():
		s, err := jwks.String()
		if err != nil {
			return nil, err
		}
		if p.inline, err = parseJWKS([]byte(s)); err != nil {
			return nil, jwks.Errorf("%v", err)
		}
		for _, k := range []string{"cluster", "timeout", "refreshInterval"} {
			if n.Get(k).Exists() {
				return nil, n.Get(k).Errorf("only valid with jwksUri")
			}
		}
	case uri.Exists():
		s, err := uri.String()
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
			return nil, uri.Errorf("invalid URL %q (want http(s)://host/path)", s)
		}
		p.authority, p.uriPath = u.Host, u.RequestURI()
		if p.cluster, err = n.Get("cluster").String(); err != nil {
			return nil, err
		}
		if p.timeout, err = n.Get("timeout").Duration(5*time.Second, time.Millisecond, time.Minute); err != nil {
			return nil, err
		}
		if p.refresh, err = n.Get("refreshInterval").Duration(20*time.Minute, time.Second, 7*24*time.Hour); err != nil {
			return nil, err
		}
		p.sharedKey = "meshwasm.authz.jwks." + shortHash(p.cluster+"\x00"+s)
	default:
		return nil, n.Errorf("one of jwks or jwksUri is required")
	}
	return p, nil
}

func parseLocations(n confjson.Node, p *provider) error {
	hs, err := n.Get("fromHeaders").Array()
	if err != nil {
		return err
	}
	for _, h := range hs {
		if err := h.Object("name", "prefix"); err != nil {
			return err
		}
		name, err := h.Get("name").String()
		if err != nil {
			return err
		}
		if !validHeaderName(name) {
			return h.Get("name").Errorf("invalid header name %q", name)
		}
		prefix, err := h.Get("prefix").OptString("")
		if err != nil {
			return err
		}
		p.locations = append(p.locations, tokenLocation{header: strings.ToLower(name), prefix: prefix})
	}
	params, err := n.Get("fromParams").Strings()
	if err != nil {
		return err
	}
	for _, q := range params {
		p.locations = append(p.locations, tokenLocation{param: q})
	}
	if len(p.locations) == 0 {
		// Istio's and Envoy's defaults.
		p.locations = []tokenLocation{{header: "authorization", prefix: "Bearer "}, {param: "access_token"}}
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// parseJWKS reads a JSON Web Key Set, refusing private and symmetric keys:
// a set that carries a secret is a misconfiguration, not something to use.
func parseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("invalid JWKS: %v", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("invalid JWKS: no keys")
	}
	for i := range set.Keys {
		if !set.Keys[i].IsPublic() || !set.Keys[i].Valid() {
			return nil, fmt.Errorf("invalid JWKS: keys[%d]: not a public key", i)
		}
	}
	return set.Keys, nil
}

// tokenInfo is a verified token, shared by all requests carrying it.
type tokenInfo struct {
	token     string
	provider  int
	gen       uint64
	expires   time.Time // when the cache entry dies: exp + clockSkew
	principal string
	presenter string
	audiences []string
	claims    [][]string // values of jwtConfig.claimPaths
	headers   []Header   // outputClaimToHeaders values
}

// verify checks a token for the providers that look in loc. It returns the
// verified token or the failure reason and the provider blamed (-1: none).
func (e *Engine) verify(tok string, loc tokenLocation, now time.Time) (*tokenInfo, JWTFailure, int) {
	jc := &e.cfg.jwt
	if len(tok) > maxTokenBytes {
		return nil, JWTMalformed, -1
	}
	jws, err := jose.ParseSignedCompact(tok, allowedAlgs)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return nil, JWTAlgorithm, -1
		}
		return nil, JWTMalformed, -1
	}
	if len(jws.Signatures) != 1 {
		return nil, JWTMalformed, -1
	}
	var unverified struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified) != nil {
		return nil, JWTMalformed, -1
	}
	var p *provider
	for _, cand := range jc.providers {
		if cand.issuer == unverified.Iss && cand.hasLocation(loc) {
			p = cand
			break
		}
	}
	if p == nil {
		return nil, JWTUnknownIssuer, -1
	}
	st := &e.jwks[p.index]
	if len(st.keys) == 0 {
		return nil, JWTNoKeys, p.index
	}
	hdr := jws.Signatures[0].Header
	if _, ok := hdr.ExtraHeaders["crit"]; ok {
		// RFC 7515 4.1.11: extensions we do not implement must fail the
		// token; "b64" (RFC 7797) is one go-jose implements but a JWT
		// payload is always encoded (RFC 7797 7), so none is accepted.
		return nil, JWTMalformed, p.index
	}
	if _, ok := hdr.ExtraHeaders["b64"]; ok {
		return nil, JWTMalformed, p.index
	}
	alg := jose.SignatureAlgorithm(hdr.Algorithm)
	var payload []byte
	found, usable := false, false
	for i := range st.keys {
		k := &st.keys[i]
		if hdr.KeyID != "" && k.KeyID != hdr.KeyID {
			continue
		}
		found = true
		if !keyAllows(k, alg) {
			continue
		}
		usable = true
		if pl, err := jws.Verify(k.Key); err == nil {
			payload = pl
			break
		}
	}
	switch {
	case !found:
		st.unknownKID = true
		return nil, JWTUnknownKID, p.index
	case !usable:
		return nil, JWTAlgorithm, p.index
	case payload == nil:
		return nil, JWTSignature, p.index
	}
	info, fail := e.checkClaims(p, payload, now)
	if fail != JWTOK {
		return nil, fail, p.index
	}
	// The cache keeps the token past this request: a copy, so that it does
	// not keep alive the block the host wrote the request headers into.
	info.token, info.gen = strings.Clone(tok), st.gen
	return info, JWTOK, p.index
}

func (p *provider) hasLocation(loc tokenLocation) bool {
	for _, l := range p.locations {
		if l == loc {
			return true
		}
	}
	return false
}

// keyAllows reports whether a JWK may verify alg: its use and alg must not
// say otherwise, and its type and curve must be the algorithm's.
func keyAllows(k *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		return alg == jose.RS256 || alg == jose.RS384 || alg == jose.RS512 || alg == jose.PS256
	case *ecdsa.PublicKey:
		return (alg == jose.ES256 && key.Curve == elliptic.P256()) || (alg == jose.ES384 && key.Curve == elliptic.P384())
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

func (e *Engine) checkClaims(p *provider, payload []byte, now time.Time) (*tokenInfo, JWTFailure) {
	skew := e.cfg.jwt.clockSkew
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if dec.Decode(&claims) != nil || claims == nil {
		return nil, JWTMalformed
	}
	if iss, _ := claims["iss"].(string); iss != p.issuer {
		return nil, JWTUnknownIssuer
	}
	info := &tokenInfo{provider: p.index}
	exp, hasExp, ok := numericDate(claims["exp"])
	if !ok {
		return nil, JWTMalformed
	}
	switch {
	case hasExp && now.After(exp.Add(skew)):
		return nil, JWTExpired
	case !hasExp && p.requireExp:
		return nil, JWTMissingExp
	case hasExp:
		info.expires = exp.Add(skew)
	default:
		// Without exp the token never expires; the cache still forgets it.
		info.expires = now.Add(5 * time.Minute)
	}
	nbf, hasNbf, ok := numericDate(claims["nbf"])
	if !ok {
		return nil, JWTMalformed
	}
	if hasNbf && now.Add(skew).Before(nbf) {
		return nil, JWTNotYetValid
	}
	aud, ok := stringList(claims["aud"])
	if !ok {
		return nil, JWTMalformed
	}
	if len(p.audiences) > 0 && !intersects(aud, p.audiences) {
		return nil, JWTAudience
	}
	sub, _ := claims["sub"].(string)
	info.principal = p.issuer + "/" + sub
	info.presenter, _ = claims["azp"].(string)
	info.audiences = aud
	info.claims = make([][]string, len(e.cfg.jwt.claimPaths))
	for i, path := range e.cfg.jwt.claimPaths {
		info.claims[i] = claimValues(claims, path)
	}
	for _, o := range p.outputs {
		if v, ok := headerValue(claims[o.claim]); ok {
			info.headers = append(info.headers, Header{Name: o.header, Value: v})
		}
	}
	return info, JWTOK
}

// numericDate reads an optional NumericDate (RFC 7519 section 2).
func numericDate(v any) (t time.Time, present, ok bool) {
	if v == nil {
		return time.Time{}, false, true
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, false, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, true
}

// stringList reads `aud`: a string or an array of strings.
func stringList(v any) ([]string, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case string:
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// claimValues follows a nested claim path; strings, numbers and booleans
// give one value, arrays of them one value each, as Istio matches claims.
func claimValues(claims map[string]any, path []string) []string {
	var v any = claims
	for _, seg := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[seg]
	}
	if arr, ok := v.([]any); ok {
		var out []string
		for _, e := range arr {
			if s, ok := scalar(e); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := scalar(v); ok {
		return []string{s}
	}
	return nil
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// headerValue renders a claim for outputClaimToHeaders; arrays are joined
// with ",". Values with control characters are dropped, never forwarded.
func headerValue(v any) (string, bool) {
	s, ok := scalar(v)
	if !ok {
		arr, isArr := v.([]any)
		if !isArr || len(arr) == 0 {
			return "", false
		}
		parts := make([]string, 0, len(arr))
		for _, e := range arr {
			p, ok := scalar(e)
			if !ok {
				return "", false
			}
			parts = append(parts, p)
		}
		s = strings.Join(parts, ",")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 && s[i] != '\t' || s[i] == 0x7f {
			return "", false
		}
	}
	return s, true
}

// tokenCache remembers verified tokens until they expire so a repeated token
// costs one hash and one compare instead of a signature check. It is bounded:
// the oldest entry is evicted first.
type tokenCache struct {
	seed maphash.Seed
	m    map[uint64]*tokenInfo
	ring []uint64
	next int
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{seed: maphash.MakeSeed(), m: make(map[uint64]*tokenInfo, size), ring: make([]uint64, 0, size)}
}

func (c *tokenCache) get(tok string) *tokenInfo {
	if cap(c.ring) == 0 {
		return nil
	}
	info := c.m[maphash.String(c.seed, tok)]
	if info == nil || info.token != tok {
		return nil
	}
	return info
}

func (c *tokenCache) put(info *tokenInfo) {
	if cap(c.ring) == 0 {
		return
	}
	h := maphash.String(c.seed, info.token)
	if _, ok := c.m[h]; ok {
		c.m[h] = info
		return
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, h)
	} else {
		delete(c.m, c.ring[c.next])
		c.ring[c.next] = h
		c.next = (c.next + 1) % len(c.ring)
	}
	c.m[h] = info
}

func (c *tokenCache) len() int { return len(c.m) }

// findToken returns the first token in the request at any provider's
// location, in configuration order.
func (jc *jwtConfig) findToken(r *Request) (string, tokenLocation, bool) {
	for _, p := range jc.providers {
		for _, l := range p.locations {
			if tok, ok := l.extract(r); ok {
				return tok, l, true
			}
		}
	}
	return "", tokenLocation{}, false
}

func (l tokenLocation) extract(r *Request) (string, bool) {
	if l.param != "" {
		return queryParam(r.Path, l.param)
	}
	if r.Headers == nil {
		return "", false
	}
	v, ok := r.Headers.Header(l.header)
	if !ok {
		return "", false
	}
	if len(v) < len(l.prefix) || !strings.EqualFold(v[:len(l.prefix)], l.prefix) {
		return "", false
	}
	return strings.TrimSpace(v[len(l.prefix):]), true
}

// queryParam finds name in the query of a raw :path. Tokens are base64url
// and dots, so a value that needs unescaping is not a token: it is returned
// as is and fails verification.
func queryParam(path, name string) (string, bool) {
	i := strings.IndexByte(path, '?')
	if i < 0 {
		return "", false
	}
	q := path[i+1:]
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}
