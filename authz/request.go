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

func (rc *reqCtx) init(r *Request, path string, trustedHops int) {
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
			rc.remoteIP = remoteIP(xff, trustedHops, rc.sourceIP)
		}
	}
}

// parseSPIFFE returns the Istio principal and namespace of a SPIFFE id
// `spiffe://<td>/ns/<ns>/sa/<sa>`. Only SPIFFE URIs yield an identity: any
// other URI SAN is no principal at all.
func parseSPIFFE(san string) (principal, namespace string) {
	rest, ok := strings.CutPrefix(san, "spiffe://")
	if !ok || rest == "" || strings.IndexByte(rest, '/') == 0 {
		return "", ""
	}
	// <td>/ns/<ns>/sa/<sa>
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return rest, ""
	}
	p := rest[i:]
	if after, ok := strings.CutPrefix(p, "/ns/"); ok {
		if j := strings.IndexByte(after, '/'); j > 0 && strings.HasPrefix(after[j:], "/sa/") {
			namespace = after[:j]
		}
	}
	return rest, namespace
}

// remoteIP picks the client address from x-forwarded-for, trusting the
// rightmost hops entries (each appended by a trusted proxy). Like Envoy's
// xff_num_trusted_hops, a header with fewer entries falls back to the
// connection's address; an unparsable entry yields no address.
func remoteIP(xff string, hops int, source netip.Addr) netip.Addr {
	end := len(xff)
	for n := 1; ; n++ {
		start := strings.LastIndexByte(xff[:end], ',') + 1
		if n == hops {
			a, err := netip.ParseAddr(strings.TrimSpace(xff[start:end]))
			if err != nil {
				return netip.Addr{}
			}
			return a.Unmap()
		}
		if start == 0 {
			return source
		}
		end = start - 1
	}
}
