package authz

import (
	"net/netip"
	"strings"
)

// Headers looks up a request header. Names are lowercase; Envoy joins
// duplicate values with ",". Pseudo-headers (":path") may be answered too but
// are not needed: the engine reads them from [Request].
type Headers interface {
	Header(name string) (value string, ok bool)
}

// Request is what the filter reads from Envoy for one request. It is read,
// never kept, by the engine.
type Request struct {
	Method    string  // :method
	Path      string  // raw :path, query included
	Authority string  // :authority
	Headers   Headers // request headers; nil means none

	SourceAddress      string // property source.address, "ip:port"
	DestinationAddress string // property destination.address, "ip:port"
	PeerURISAN         string // property connection.uri_san_peer_certificate
	MTLS               bool   // property connection.mtls
	SNI                string // property connection.requested_server_name
}

// reqCtx holds the attributes derived from a Request once per check.
type reqCtx struct {
	req             *Request
	path            string // normalized, without query
	principal       string // SPIFFE id without "spiffe://", mTLS only
	namespace       string
	sourceIP        netip.Addr
	remoteIP        netip.Addr
	destinationIP   netip.Addr
	destinationPort uint16
	auth            *tokenInfo // verified JWT, nil without token
}

// Request rejection reasons, stable for logs and tests.
const (
	reasonBadAuthority = "invalid :authority"
	reasonBadXFF       = "invalid x-forwarded-for entry from a trusted hop"
)

// init derives the request attributes. A non-empty reason means the request
// must be answered 400: an :authority no server would parse the same way, or
// an x-forwarded-for whose trusted entry is not an address (a DENY on
// remoteIpBlocks must not be skipped because the address is missing).
func (rc *reqCtx) init(r *Request, path string, trustedHops int) (reason string) {
	if !validAuthority(r.Authority) {
		return reasonBadAuthority
	}
	rc.req = r
	rc.path = path
	if r.MTLS {
		rc.principal, rc.namespace = parseSPIFFE(r.PeerURISAN)
	}
	if ap, err := netip.ParseAddrPort(r.SourceAddress); err == nil {
		rc.sourceIP = ap.Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(r.DestinationAddress); err == nil {
		rc.destinationIP = ap.Addr().Unmap()
		rc.destinationPort = ap.Port()
	}
	rc.remoteIP = rc.sourceIP
	if trustedHops > 0 && r.Headers != nil {
		if xff, ok := r.Headers.Header("x-forwarded-for"); ok {
			if rc.remoteIP, ok = remoteIP(xff, trustedHops, rc.sourceIP); !ok {
				return reasonBadXFF
			}
		}
	}
	return ""
}

// validAuthority refuses bytes that have no place in a host[:port] and that
// servers split differently: whitespace and controls, non-ASCII, and the
// delimiters of paths, queries, fragments and user info.
func validAuthority(a string) bool {
	for i := 0; i < len(a); i++ {
		switch c := a[i]; {
		case c <= 0x20 || c >= 0x7f:
			return false
		case c == '/' || c == '\\' || c == '?' || c == '#' || c == '@' || c == '"' || c == '<' || c == '>' ||
			c == '{' || c == '}' || c == '|' || c == '^' || c == '`':
			return false
		}
	}
	return true
}

// parseSPIFFE returns the Istio principal and namespace of a SPIFFE id
// `spiffe://<td>/ns/<ns>/sa/<sa>`. Only a valid SPIFFE id yields an identity
// (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md: a
// lowercase trust domain of `a-z 0-9 . - _`, path segments of
// `a-z A-Z 0-9 . - _` that are neither empty, `.` nor `..`); any other URI SAN
// is no principal at all. The namespace is read only from the exact Istio
// shape, so `/ns/a/sa/b/ns/c` names no namespace.
func parseSPIFFE(san string) (principal, namespace string) {
	rest, ok := strings.CutPrefix(san, "spiffe://")
	if !ok || rest == "" {
		return "", ""
	}
	td, path, _ := strings.Cut(rest, "/")
	if td == "" {
		return "", ""
	}
	for i := 0; i < len(td); i++ {
		if c := td[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return "", ""
		}
	}
	if len(rest) > len(td) { // a path follows
		var segs [4]string
		n := 0
		for seg := range strings.SplitSeq(path, "/") {
			if !validSPIFFESegment(seg) {
				return "", ""
			}
			if n < len(segs) {
				segs[n] = seg
			}
			n++
		}
		if n == 4 && segs[0] == "ns" && segs[2] == "sa" {
			namespace = segs[1]
		}
	}
	return rest, namespace
}

func validSPIFFESegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// remoteIP picks the client address from x-forwarded-for, trusting the
// rightmost hops entries (each appended by a trusted proxy). Like Envoy's
// xff_num_trusted_hops, a header with fewer entries falls back to the
// connection's address; an unparsable trusted entry is reported (false).
func remoteIP(xff string, hops int, source netip.Addr) (netip.Addr, bool) {
	end := len(xff)
	for n := 1; ; n++ {
		start := strings.LastIndexByte(xff[:end], ',') + 1
		if n == hops {
			a, err := netip.ParseAddr(strings.TrimSpace(xff[start:end]))
			if err != nil || a.Zone() != "" {
				return netip.Addr{}, false
			}
			return a.Unmap(), true
		}
		if start == 0 {
			return source, true
		}
		end = start - 1
	}
}

// Inputs says which connection properties a configuration's policies read.
// Each is a host call per request on Wasm (and a call back into the module
// for the reply), so the filter fetches only these; a field left empty in
// Request reads as absent, which is what an unread attribute is.
type Inputs struct {
	Source      bool // source.address: source.ip, remote.ip, ipBlocks, remoteIpBlocks
	Destination bool // destination.address: destination.ip, destination.port, ports
	Peer        bool // connection.mtls and the peer's URI SAN: principals, namespaces
	SNI         bool // connection.requested_server_name: connection.sni
}

// Reads returns the connection properties the policies read.
func (c *Config) Reads() Inputs {
	var in Inputs
	note := func(conds []cond) {
		for i := range conds {
			switch conds[i].attr {
			case attrSourceIP, attrRemoteIP:
				in.Source = true
			case attrDestinationIP, attrDestinationPort:
				in.Destination = true
			case attrPrincipal, attrNamespace:
				in.Peer = true
			case attrSNI:
				in.SNI = true
			}
		}
	}
	for _, p := range c.policies {
		for i := range p.rules {
			r := &p.rules[i]
			for _, f := range r.from {
				note(f)
			}
			for _, t := range r.to {
				note(t)
			}
			note(r.when)
		}
	}
	return in
}
