package ratelimit

import "strconv"

// Headers returns the rate-limit response headers for d: on a denial
// Retry-After plus the policy headers; on an admission the policy headers
// only when response.headersOnAllowed is set. The IETF fields are
// `RateLimit-Policy: "<rule>";q=<quota>;w=<window>` and
// `RateLimit: "<rule>";r=<remaining>;t=<reset>`; response.legacyHeaders adds
// X-RateLimit-Limit, -Remaining and -Reset. Names are lowercase, as HTTP/2
// requires.
func (l *Limiter) Headers(d *Decision) [][2]string {
	deny := d.Verdict == Deny
	if !deny && !l.cfg.response.onAllowed {
		return nil
	}
	var h [][2]string
	if deny {
		h = append(h, [2]string{"retry-after", strconv.FormatInt(max(d.RetryAfter, 1), 10)})
	}
	q := d.Quota
	if q.Name == "" {
		return h
	}
	// Rule names are restricted to [A-Za-z0-9_.-], so they need no escaping
	// inside a structured-field string.
	h = append(h,
		[2]string{"ratelimit-policy", `"` + q.Name + `";q=` + strconv.FormatInt(q.Limit, 10) + ";w=" + strconv.FormatInt(q.Window, 10)},
		[2]string{"ratelimit", `"` + q.Name + `";r=` + strconv.FormatInt(q.Remaining, 10) + ";t=" + strconv.FormatInt(q.Reset, 10)},
	)
	if l.cfg.response.legacy {
		h = append(h,
			[2]string{"x-ratelimit-limit", strconv.FormatInt(q.Limit, 10)},
			[2]string{"x-ratelimit-remaining", strconv.FormatInt(q.Remaining, 10)},
			[2]string{"x-ratelimit-reset", strconv.FormatInt(q.Reset, 10)},
		)
	}
	return h
}

// DenyResponse is the local reply for a denied request: status 429, the
// headers of [Limiter.Headers] plus content-type, and the configured body
// (an RFC 9457 problem detail by default). The body is shared: do not modify
// it.
func (l *Limiter) DenyResponse(d *Decision) (status uint32, headers [][2]string, body []byte) {
	headers = append(l.Headers(d), [2]string{"content-type", l.cfg.response.contentType})
	return 429, headers, l.cfg.response.body
}
