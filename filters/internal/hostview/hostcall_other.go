//go:build !wasip1

package hostview

import (
	"errors"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

func requestHeaderPairs() ([][2]string, error) { return proxywasm.GetHttpRequestHeaders() }

func responseHeader(name string) (string, bool) {
	v, err := proxywasm.GetHttpResponseHeader(name)
	return v, err == nil
}

func property(p propertyPath) ([]byte, error) { return proxywasm.GetProperty(p.parts) }

func sharedData(key string) ([]byte, uint32, error) { return proxywasm.GetSharedData(key) }

var errPairs = errors.New("malformed header map")
