package canary

import (
	"net/url"
	"strings"
)

// Request is the read-only view of one request that a decision needs. The
// filter implements it over the proxy-wasm host calls; methods are called
// lazily, so a rule set that only looks at headers never asks for the source
// address or the principal.
type Request interface {
	// Header returns a request header by lowercase name, pseudo-headers
	// included (":method", ":path", ":authority"). Repeated headers come
	// joined by "," as Envoy delivers them. Cookies are read from "cookie".
	Header(name string) (string, bool)
	// SourceAddress is the downstream address ("ip:port", Envoy's
	// source.address property); only asked for when a split hashes on it.
	SourceAddress() string
	// Principal is the peer's identity (for example the SPIFFE id in
	// connection.uri_san_peer_certificate), "" when there is none; only asked
	// for when a client sends the routing header.
	Principal() string
}

// splitPath splits a request target (":path") into the path and the raw
// query string; a fragment, which clients should never send, is dropped.
func splitPath(target string) (path, query string) {
	if i := strings.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i], target[i+1:]
	}
	return target, ""
}

// Cookie returns the value of the first cookie called name in a Cookie header
// value, without allocating. Pairs are separated by ";" and, because Envoy
// joins repeated headers with ",", by "," too: neither may appear in a valid
// cookie value (RFC 6265 section 4.1.1). A value wrapped in double quotes is
// returned without them.
func Cookie(header, name string) (string, bool) {
	for len(header) > 0 {
		var pair string
		if i := indexSeparator(header); i >= 0 {
			pair, header = header[:i], header[i+1:]
		} else {
			pair, header = header, ""
		}
		pair = trimOWS(pair)
		eq := strings.IndexByte(pair, '=')
		if eq < 0 || trimOWS(pair[:eq]) != name {
			continue
		}
		v := trimOWS(pair[eq+1:])
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, true
	}
	return "", false
}

// QueryParam returns the decoded value of the first query parameter called
// name in a raw query string. It allocates only when a name or the value is
// percent- or plus-encoded. A parameter without "=" has an empty value; a
// parameter whose encoding is invalid is skipped, as url.ParseQuery would.
func QueryParam(query, name string) (string, bool) {
	for len(query) > 0 {
		var pair string
		if i := strings.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			pair, query = query, ""
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if !needsUnescape(k) {
			if k != name {
				continue
			}
		} else if dk, err := url.QueryUnescape(k); err != nil || dk != name {
			continue
		}
		if !needsUnescape(v) {
			return v, true
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			continue
		}
		return dv, true
	}
	return "", false
}

func indexSeparator(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ';' || s[i] == ',' {
			return i
		}
	}
	return -1
}

func needsUnescape(s string) bool { return strings.ContainsAny(s, "%+") }

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// hostOf strips the port from an "ip:port" or "[ipv6]:port" address so that a
// client keeps its version across connections.
func hostOf(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if i := strings.IndexByte(addr, ']'); i > 0 {
			return addr[1:i]
		}
		return addr
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && strings.IndexByte(addr, ':') == i {
		return addr[:i]
	}
	return addr
}
