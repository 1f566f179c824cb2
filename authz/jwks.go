package authz

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwksState is one provider's current key set on this worker.
type jwksState struct {
	keys       []jose.JSONWebKey
	gen        uint64    // bumped on every key change: older cached tokens are ignored
	fetchedAt  time.Time // of the keys in use (shared record time)
	unknownKID bool      // a token named a kid we lack: refetch early
	inflight   time.Time // this worker has a callout outstanding until then
}

// JWKSFetch is a callout the filter must make from its root context:
// dispatch_http_call(Cluster, Headers, no body, Timeout), then hand the reply
// to [Engine.JWKSReply] with the same Provider.
type JWKSFetch struct {
	Provider int
	Cluster  string
	Headers  [][2]string
	Timeout  time.Duration
}

// jwksRecord is what workers share about one remote key set. Claim is a
// lease: the worker that wrote it fetches, the others wait for Fetched to
// move.
type jwksRecord struct {
	Fetched int64           `json:"fetched,omitempty"`
	Claim   int64           `json:"claim,omitempty"`
	JWKS    json.RawMessage `json:"jwks,omitempty"`
}

func (e *Engine) readRecord(key string) (jwksRecord, uint32) {
	var rec jwksRecord
	v, cas, ok, err := e.shared.Get(key)
	if err != nil || !ok || json.Unmarshal(v, &rec) != nil {
		return jwksRecord{}, cas
	}
	return rec, cas
}

func (e *Engine) writeRecord(key string, rec jwksRecord, cas uint32) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return e.shared.Set(key, v, cas)
}

// Tick adopts key sets other workers fetched and returns the fetches this
// worker should start now, appended to dst. Call it at plugin start and on
// every tick. A remote key set is fetched when none is loaded, when
// refreshInterval has passed, or when a token named an unknown kid and
// minRefetchInterval has passed since the last fetch; workers take a lease
// in shared data so that one of them fetches.
func (e *Engine) Tick(dst []JWKSFetch) []JWKSFetch {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	for _, p := range e.cfg.jwt.providers {
		if p.inline != nil {
			continue
		}
		st := &e.jwks[p.index]
		rec, cas := e.readRecord(p.sharedKey)
		if rec.Fetched > st.fetchedAt.UnixNano() && len(rec.JWKS) > 0 {
			if keys, err := parseJWKS(rec.JWKS); err == nil {
				e.installKeys(st, keys, time.Unix(0, rec.Fetched))
			}
		}
		if now.Before(st.inflight) || now.UnixNano() < rec.Claim {
			continue
		}
		age := now.Sub(time.Unix(0, rec.Fetched))
		due := len(st.keys) == 0 || rec.Fetched == 0 || age >= p.refresh ||
			(st.unknownKID && age >= e.cfg.jwt.minRefetch)
		if !due {
			continue
		}
		rec.Claim = now.Add(p.timeout + time.Second).UnixNano()
		if e.writeRecord(p.sharedKey, rec, cas) != nil {
			continue // another worker took the lease
		}
		st.inflight = now.Add(p.timeout + time.Second)
		dst = append(dst, JWKSFetch{
			Provider: p.index,
			Cluster:  p.cluster,
			Headers:  [][2]string{{":method", "GET"}, {":path", p.uriPath}, {":authority", p.authority}, {"accept", "application/json"}},
			Timeout:  p.timeout,
		})
	}
	return dst
}

func (e *Engine) installKeys(st *jwksState, keys []jose.JSONWebKey, at time.Time) {
	st.keys = keys
	st.gen++
	st.fetchedAt = at
	st.unknownKID = false
}

// JWKSReply hands the engine the answer to a [JWKSFetch]. A 200 with a valid
// key set replaces the provider's keys here and, through shared data, on
// every worker. Anything else keeps the old keys (none: tokens keep failing,
// closed) and backs the lease off by minRefetchInterval; the error says why.
func (e *Engine) JWKSReply(providerIndex int, reply Reply) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if providerIndex < 0 || providerIndex >= len(e.cfg.jwt.providers) || e.cfg.jwt.providers[providerIndex].inline != nil {
		return fmt.Errorf("jwks: no remote provider %d", providerIndex)
	}
	p := e.cfg.jwt.providers[providerIndex]
	st := &e.jwks[p.index]
	st.inflight = time.Time{}
	now := e.clock()
	rec, cas := e.readRecord(p.sharedKey)
	keys, err := jwksFromReply(reply)
	if err != nil {
		rec.Claim = now.Add(e.cfg.jwt.minRefetch).UnixNano()
		_ = e.writeRecord(p.sharedKey, rec, cas) // best effort: the lease also times out
		return fmt.Errorf("jwks %s: %w", p.name, err)
	}
	e.installKeys(st, keys, now)
	rec = jwksRecord{Fetched: now.UnixNano(), JWKS: reply.Body}
	if err := e.writeRecord(p.sharedKey, rec, 0); err != nil {
		return fmt.Errorf("jwks %s: sharing keys: %w", p.name, err)
	}
	return nil
}

func jwksFromReply(r Reply) ([]jose.JSONWebKey, error) {
	if r.Failed {
		return nil, errors.New("callout failed")
	}
	status, ok := r.Status()
	if !ok {
		return nil, errors.New("reply without a valid :status")
	}
	if status != 200 {
		return nil, fmt.Errorf("status %d", status)
	}
	return parseJWKS(r.Body)
}

// Reply is the answer to a callout as the host reports it: response headers
// (":status" among them), body, or Failed for a reset, timeout or
// unreachable cluster.
type Reply struct {
	Headers [][2]string
	Body    []byte
	Failed  bool
}

// Status parses ":status"; ok is false when it is missing or not a valid
// HTTP status code.
func (r Reply) Status() (int, bool) {
	v, ok := r.header(":status")
	if !ok || len(v) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 100 || n > 599 {
		return 0, false
	}
	return n, true
}

func (r Reply) header(name string) (string, bool) {
	for _, h := range r.Headers {
		if equalFoldASCII(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// shortHash names shared-data keys after a configuration value.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}
