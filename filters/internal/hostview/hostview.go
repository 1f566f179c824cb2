// Package hostview adapts the proxy-wasm host to the small interfaces the
// policy cores ask for: a lazy view of the current request, and Envoy's
// shared data as a CAS store. It is the one place filter code turns host
// calls into core inputs, so each core stays pure and natively testable.
package hostview

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

// Request is a lazy view of the stream's request: each value is fetched from
// the host the first time a core asks for it, once per request. Headers come
// from one host call that reads them all (see Headers): a core asking for ten
// headers would otherwise cross into the host ten times, and on Wasm each
// crossing that returns data costs a re-entry into the module to allocate the
// reply. The zero value is ready to use; a Request must not outlive its
// stream. Header reads reflect the headers as they were at the first read;
// ReplaceHeader and RemoveHeader keep the view in step with the filters' own
// changes. In the pipeline every filter of a stream shares one Request, so a
// header or property is read from the host once per request, not once per
// filter.
type Request struct {
	headers                                  Headers
	method, path, source, principal          string
	haveMethod, havePath, haveSource, haveID bool
	status                                   int
	haveStatus                               bool
	now                                      time.Time
	// props remembers the properties read so far (a request reads a
	// handful): a linear scan beats a map here and allocates nothing.
	props  [maxCachedProps]cachedProp
	nProps int
}

// maxCachedProps bounds the property cache; reads beyond it go to the host.
const maxCachedProps = 8

type cachedProp struct {
	path, value string
	ok          bool
}

// Header returns a request header (lowercase name); every value of a
// repeated header, joined with ",".
func (r *Request) Header(name string) (string, bool) { return r.headers.Header(name) }

// ReplaceHeader sets a request header on the host, replacing every value it
// had (proxy_replace_header_map_value), and in the view.
func (r *Request) ReplaceHeader(name, value string) error {
	if err := proxywasm.ReplaceHttpRequestHeader(name, value); err != nil {
		return err
	}
	r.headers.replace(name, value)
	return nil
}

// RemoveHeader removes a request header on the host and in the view. A
// header that was not there is not an error.
func (r *Request) RemoveHeader(name string) error {
	if err := proxywasm.RemoveHttpRequestHeader(name); err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		return err
	}
	r.headers.remove(name)
	return nil
}

// Method is the :method pseudo-header.
func (r *Request) Method() string {
	if !r.haveMethod {
		r.method, _ = r.Header(":method")
		r.haveMethod = true
	}
	return r.method
}

// Path is the :path pseudo-header, query included.
func (r *Request) Path() string {
	if !r.havePath {
		r.path, _ = r.Header(":path")
		r.havePath = true
	}
	return r.path
}

// SourceAddress is the downstream peer address "ip:port" (Envoy's
// source.address), never a client-supplied header.
func (r *Request) SourceAddress() string {
	if !r.haveSource {
		r.source, _ = r.Property("source.address")
		r.haveSource = true
	}
	return r.source
}

// RemoteAddress is SourceAddress under the name the rate limiter uses.
func (r *Request) RemoteAddress() string { return r.SourceAddress() }

// Principal is the peer's identity from its mTLS certificate: the first URI
// SAN (a SPIFFE id) without the "spiffe://" scheme, or "" for plain text.
func (r *Request) Principal() string {
	if !r.haveID {
		san, _ := r.Property("connection.uri_san_peer_certificate")
		r.principal = strings.TrimPrefix(san, "spiffe://")
		r.haveID = true
	}
	return r.principal
}

// Property reads an Envoy attribute by its dotted path, e.g.
// "connection.requested_server_name". Values are returned as raw bytes
// converted to a string; numeric attributes are little-endian integers.
func (r *Request) Property(path string) (string, bool) {
	for i := range r.props[:r.nProps] {
		if c := &r.props[i]; c.path == path {
			return c.value, c.ok
		}
	}
	var value string
	v, err := property(lookupPropertyPath(path))
	ok := err == nil
	if ok {
		value = hostString(v)
	}
	if r.nProps < maxCachedProps {
		r.props[r.nProps] = cachedProp{path: path, value: value, ok: ok}
		r.nProps++
	}
	return value, ok
}

// Now is the request's time as the filters see it: the clock (WASI's, which
// is Envoy's wall clock) is read on the first call, and every filter of a
// pipeline shares that reading, a host call or two fewer for each.
func (r *Request) Now() time.Time {
	if r.now.IsZero() {
		r.now = time.Now()
	}
	return r.now
}

// ResponseStatus is the response's :status, read from the host once per
// request (in the pipeline, once for every filter); 0 when the response
// headers carry no readable status. Call it only once response headers have
// arrived.
func (r *Request) ResponseStatus() int {
	if !r.haveStatus {
		if v, ok := responseHeader(":status"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				r.status = n
			}
		}
		r.haveStatus = true
	}
	return r.status
}

// SharedData is Envoy's shared data as the cores' casstore.Store.
type SharedData struct{}

// Get returns a value, its CAS, and whether the key exists.
func (s SharedData) Get(key string) ([]byte, uint32, bool, error) {
	v, cas, err := sharedData(key)
	switch {
	case err == nil:
		return v, cas, true, nil
	case errors.Is(err, types.ErrorStatusNotFound):
		return nil, 0, false, nil
	}
	return nil, 0, false, err
}

// Set writes a value if the key's CAS is still cas (0 writes unconditionally;
// Envoy creates a missing key whatever the CAS).
func (s SharedData) Set(key string, value []byte, cas uint32) error {
	err := proxywasm.SetSharedData(key, value, cas)
	if errors.Is(err, types.ErrorStatusCasMismatch) {
		return casstore.ErrCASMismatch
	}
	return err
}
