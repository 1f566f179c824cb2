package hostview

import (
	"strconv"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

// Reply is the answer to an HTTP callout.
type Reply struct {
	Status  int
	Headers [][2]string
	Body    []byte
}

// ReadReply reads the callout reply being delivered, its body cut at
// maxBody bytes. ok is false when there is no usable reply: Envoy reports a
// failed or timed-out call with no headers, and a reply without a numeric
// :status is no reply either.
func ReadReply(numHeaders, bodySize, maxBody int) (r Reply, ok bool) {
	if numHeaders == 0 {
		return Reply{}, false
	}
	headers, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		return Reply{}, false
	}
	r.Headers = headers
	for _, h := range headers {
		if h[0] == ":status" {
			r.Status, err = strconv.Atoi(h[1])
			break
		}
	}
	if err != nil || r.Status < 100 || r.Status > 599 {
		return Reply{}, false
	}
	if bodySize > 0 && maxBody > 0 {
		if r.Body, err = proxywasm.GetHttpCallResponseBody(0, min(bodySize, maxBody)); err != nil {
			return Reply{}, false
		}
	}
	return r, true
}
