package ratelimit

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/gjson"
)

// MissingValue is the descriptor value a global rule sends for a missing key
// part when onMissingKey is fallback.
const MissingValue = "-"

// GlobalCall is an HTTP callout to the envoyproxy/ratelimit JSON API
// (POST /json). The filter dispatches it to Cluster with Headers and Body and
// a Timeout, then hands the reply to [Limiter.Complete].
type GlobalCall struct {
	Cluster string
	Headers [][2]string
	Body    []byte
	Timeout time.Duration

	body  globalBody
	rules []int
	local Decision
}

type descriptorEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type descriptor struct {
	Entries []descriptorEntry `json:"entries"`
}

type globalBody struct {
	Domain      string       `json:"domain"`
	Descriptors []descriptor `json:"descriptors"`
}

func (b *globalBody) encode(domain string) []byte {
	b.Domain = domain
	// Structs of strings cannot fail to marshal (invalid UTF-8 is replaced).
	out, _ := json.Marshal(b)
	return out
}

func (l *Limiter) addDescriptor(call *GlobalCall, i int, r *rule, req Request, path string) *GlobalCall {
	var d descriptor
	for k, s := range r.key {
		v, ok := s.value(req, path)
		if !ok {
			if !r.fallback {
				return call
			}
			v = MissingValue
		}
		d.Entries = append(d.Entries, descriptorEntry{Key: r.descriptorKeys[k], Value: v})
	}
	if call == nil {
		g := l.cfg.global
		call = &GlobalCall{
			Cluster: g.cluster,
			Timeout: g.timeout,
			Headers: [][2]string{
				{":method", "POST"},
				{":path", g.path},
				{":authority", g.authority},
				{"content-type", "application/json"},
			},
		}
	}
	call.rules = append(call.rules, i)
	call.body.Descriptors = append(call.body.Descriptors, d)
	return call
}

// Complete finishes a decision that returned Verdict Call. status is the
// reply's HTTP status, or 0 when the call failed, timed out or the stream
// went away; body is the reply body. Any reply that is not a well-formed
// 200 or 429 RateLimitResponse covering every descriptor is an error, and
// errors follow global.failureMode.
func (l *Limiter) Complete(call *GlobalCall, status int, body []byte) Decision {
	d := call.local
	d.Call = nil
	statuses, err := parseReply(status, body, len(call.rules))
	if err != nil {
		for _, ri := range call.rules {
			l.add(ri, MetricGlobalErrors, 1)
		}
		if l.cfg.global.allow {
			return l.finishAllowed(d)
		}
		d.Verdict = Deny
		d.Rule = call.rules[0]
		d.Delay = 0
		d.RetryAfter = 1
		d.Quota = Quota{}
		return d
	}
	var deny *globalStatus
	for k, st := range statuses {
		ri := call.rules[k]
		r := &l.cfg.rules[ri]
		q := st.quota(r.name)
		switch {
		case !st.over:
			l.add(ri, MetricAllowed, 1)
			if !r.shadow && (d.Quota.Name == "" || q.Remaining < d.Quota.Remaining) {
				d.Quota = q
			}
		case r.shadow:
			l.add(ri, MetricShadowLimited, 1)
			d.ShadowLimited = append(d.ShadowLimited, ri)
		default:
			l.add(ri, MetricLimited, 1)
			if deny == nil {
				deny = &statuses[k]
				d.Verdict = Deny
				d.Rule = ri
				d.Delay = 0
				d.RetryAfter = max(ceilSeconds(st.reset), 1)
				d.Quota = q
			}
		}
	}
	if deny != nil {
		return d
	}
	return l.finishAllowed(d)
}

func (l *Limiter) finishAllowed(d Decision) Decision {
	d.Verdict = Allow
	if d.Delay > 0 {
		d.Verdict = Delay
		l.add(d.Rule, MetricDelayed, 1)
	}
	return d
}

type globalStatus struct {
	over      bool
	limit     int64
	unit      int64 // seconds
	remaining int64
	reset     int64 // ns
}

func (s *globalStatus) quota(name string) Quota {
	q := Quota{Name: name, Limit: s.limit, Window: s.unit, Remaining: s.remaining, Reset: ceilSeconds(s.reset)}
	if s.over {
		q.Remaining = 0
	}
	return q
}

var units = map[string]int64{"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 7 * 86400, "MONTH": 30 * 86400, "YEAR": 365 * 86400}

// parseReply reads a RateLimitResponse in proto3 JSON (camelCase or the
// original snake_case names; enums as names or numbers).
func parseReply(status int, body []byte, want int) ([]globalStatus, error) {
	if status == 0 {
		return nil, errors.New("global: no reply")
	}
	if status != 200 && status != 429 {
		return nil, fmt.Errorf("global: unexpected status %d", status)
	}
	if !gjson.ValidBytes(body) {
		return nil, errors.New("global: reply is not JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, errors.New("global: reply is not an object")
	}
	overall, err := code(field(root, "overallCode", "overall_code"))
	if err != nil {
		return nil, fmt.Errorf("global: overallCode: %w", err)
	}
	if overall != (status == 429) {
		return nil, fmt.Errorf("global: status %d disagrees with overallCode", status)
	}
	list := root.Get("statuses")
	if !list.IsArray() {
		return nil, errors.New("global: statuses missing")
	}
	items := list.Array()
	if len(items) != want {
		return nil, fmt.Errorf("global: %d statuses for %d descriptors", len(items), want)
	}
	out := make([]globalStatus, len(items))
	anyOver := false
	for i, it := range items {
		if !it.IsObject() {
			return nil, fmt.Errorf("global: statuses[%d]: not an object", i)
		}
		s := &out[i]
		if s.over, err = code(it.Get("code")); err != nil {
			return nil, fmt.Errorf("global: statuses[%d].code: %w", i, err)
		}
		anyOver = anyOver || s.over
		if lim := field(it, "currentLimit", "current_limit"); lim.Exists() {
			if !lim.IsObject() {
				return nil, fmt.Errorf("global: statuses[%d].currentLimit: not an object", i)
			}
			if s.limit, err = count(field(lim, "requestsPerUnit", "requests_per_unit")); err != nil {
				return nil, fmt.Errorf("global: statuses[%d].currentLimit.requestsPerUnit: %w", i, err)
			}
			u := lim.Get("unit")
			if u.Exists() {
				if s.unit = units[u.String()]; s.unit == 0 || u.Type != gjson.String {
					return nil, fmt.Errorf("global: statuses[%d].currentLimit.unit: unknown unit", i)
				}
			}
		}
		if s.remaining, err = count(field(it, "limitRemaining", "limit_remaining")); err != nil {
			return nil, fmt.Errorf("global: statuses[%d].limitRemaining: %w", i, err)
		}
		if r := field(it, "durationUntilReset", "duration_until_reset"); r.Exists() {
			d, err := time.ParseDuration(r.String())
			if r.Type != gjson.String || err != nil || d < 0 {
				return nil, fmt.Errorf("global: statuses[%d].durationUntilReset: invalid duration", i)
			}
			s.reset = int64(d)
		}
	}
	if anyOver != overall {
		return nil, errors.New("global: overallCode disagrees with statuses")
	}
	return out, nil
}

func field(r gjson.Result, camel, snake string) gjson.Result {
	if v := r.Get(camel); v.Exists() {
		return v
	}
	return r.Get(snake)
}

// code reads a RateLimitResponse.Code: true for OVER_LIMIT, false for OK.
func code(v gjson.Result) (bool, error) {
	switch {
	case v.Type == gjson.String && v.Str == "OK", v.Type == gjson.Number && v.Raw == "1":
		return false, nil
	case v.Type == gjson.String && v.Str == "OVER_LIMIT", v.Type == gjson.Number && v.Raw == "2":
		return true, nil
	case !v.Exists():
		return false, errors.New("missing")
	}
	return false, fmt.Errorf("unexpected value %s", v.Raw)
}

// count reads a proto3 uint32 (a number, absent when zero).
func count(v gjson.Result) (int64, error) {
	if !v.Exists() {
		return 0, nil
	}
	if v.Type != gjson.Number || v.Num < 0 || v.Num > 1<<32-1 || v.Num != float64(int64(v.Num)) {
		return 0, fmt.Errorf("not a uint32: %s", v.Raw)
	}
	return int64(v.Num), nil
}
