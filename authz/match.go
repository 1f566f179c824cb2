package authz

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// matchKind is how one configured string is compared, following Istio: a
// trailing `*` is a prefix match, a leading `*` a suffix match and a lone `*`
// matches any present value.
type matchKind uint8

const (
	matchExact matchKind = iota
	matchPrefix
	matchSuffix
	matchPresent
)

type strMatch struct {
	kind matchKind
	val  string
}

func compileString(s string) strMatch {
	switch {
	case s == "*":
		return strMatch{kind: matchPresent}
	case strings.HasSuffix(s, "*"):
		return strMatch{kind: matchPrefix, val: s[:len(s)-1]}
	case strings.HasPrefix(s, "*"):
		return strMatch{kind: matchSuffix, val: s[1:]}
	}
	return strMatch{kind: matchExact, val: s}
}

func (m strMatch) match(v string) bool {
	switch m.kind {
	case matchPresent:
		return true
	case matchPrefix:
		return strings.HasPrefix(v, m.val)
	case matchSuffix:
		return strings.HasSuffix(v, m.val)
	}
	return v == m.val
}

// matchFold is match for case-insensitive values (hosts); m.val is lowercase.
func (m strMatch) matchFold(v string) bool {
	switch m.kind {
	case matchPresent:
		return true
	case matchPrefix:
		return len(v) >= len(m.val) && strings.EqualFold(v[:len(m.val)], m.val)
	case matchSuffix:
		return len(v) >= len(m.val) && strings.EqualFold(v[len(v)-len(m.val):], m.val)
	}
	return strings.EqualFold(v, m.val)
}

// valueKind is the type of the values an attribute is compared with.
type valueKind uint8

const (
	kindString valueKind = iota
	kindHost
	kindIP
	kindPort
)

// values is one ORed list: strings, CIDRs or ports depending on the attribute.
type values struct {
	strs  []strMatch
	cidrs []netip.Prefix
	ports []uint16
}

func (v *values) empty() bool { return len(v.strs) == 0 && len(v.cidrs) == 0 && len(v.ports) == 0 }

func (v *values) matchString(s string) bool {
	for _, m := range v.strs {
		if m.match(s) {
			return true
		}
	}
	return false
}

// matchText matches client-written text. lenient ignores ASCII case and, for
// paths, one trailing slash: the spelling a server may treat as the same.
func (v *values) matchText(s string, lenient, path bool) bool {
	if !lenient {
		return v.matchString(s)
	}
	for _, m := range v.strs {
		if m.matchFold(s) {
			return true
		}
		if !path {
			continue
		}
		switch m.kind {
		case matchExact:
			// "/admin/" for "/admin" and "/admin" for "/admin/".
			if n := len(s); n > 1 && s[n-1] == '/' && strings.EqualFold(s[:n-1], m.val) {
				return true
			}
			if n := len(m.val); n > 1 && m.val[n-1] == '/' && strings.EqualFold(m.val[:n-1], s) {
				return true
			}
		case matchPrefix:
			// "/admin" for "/admin/*": the directory itself.
			if n := len(m.val); n > 1 && m.val[n-1] == '/' && strings.EqualFold(m.val[:n-1], s) {
				return true
			}
		}
	}
	return false
}

// matchHost compares an :authority case-insensitively; a configured host
// without a port also matches the authority with its port removed, as Istio
// does.
func (v *values) matchHost(authority string) bool {
	bare := stripPort(authority)
	// "admin.example.com." is the fully qualified spelling of the same host.
	host := strings.TrimSuffix(bare, ".")
	for _, m := range v.strs {
		if m.matchFold(authority) || (m.kind != matchPresent && (m.matchFold(bare) || m.matchFold(host))) {
			return true
		}
	}
	return false
}

func (v *values) matchIP(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range v.cidrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (v *values) matchPort(p uint16) bool {
	for _, q := range v.ports {
		if q == p {
			return true
		}
	}
	return false
}

// stripPort removes a trailing `:port` from an authority, keeping IPv6
// brackets intact.
func stripPort(authority string) string {
	i := strings.LastIndexByte(authority, ':')
	if i < 0 || strings.IndexByte(authority[i:], ']') >= 0 {
		return authority
	}
	if strings.HasPrefix(authority, "[") && authority[i-1] != ']' {
		return authority
	}
	return authority[:i]
}

// compileValues turns a configured string list into values of kind k.
func compileValues(n confjson.Node, k valueKind) (values, error) {
	elems, err := n.Array()
	if err != nil {
		return values{}, err
	}
	var v values
	for _, e := range elems {
		s, err := e.String()
		if err != nil {
			return values{}, err
		}
		switch k {
		case kindIP:
			p, err := parseCIDR(s)
			if err != nil {
				return values{}, e.Errorf("%v", err)
			}
			v.cidrs = append(v.cidrs, p)
		case kindPort:
			p, err := strconv.ParseUint(s, 10, 16)
			if err != nil || p == 0 {
				return values{}, e.Errorf("invalid port %q", s)
			}
			v.ports = append(v.ports, uint16(p))
		case kindHost:
			v.strs = append(v.strs, compileString(strings.ToLower(s)))
		default:
			v.strs = append(v.strs, compileString(s))
		}
	}
	return v, nil
}

// parseCIDR accepts a prefix or a single address, as Istio's ipBlocks do.
func parseCIDR(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errInvalidCIDR(s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errInvalidCIDR(s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

type errInvalidCIDR string

func (e errInvalidCIDR) Error() string { return "invalid CIDR " + strconv.Quote(string(e)) }
