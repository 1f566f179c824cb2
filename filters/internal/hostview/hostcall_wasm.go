//go:build wasip1

package hostview

import (
	"errors"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/abi"
)

// On Wasm the per-request reads go through the bridge's direct calls, which
// allocate nothing but the data (see abi/direct_wasip1.go); elsewhere
// (native tests on the SDK's emulator) through the SDK.

func requestHeaderPairs() ([][2]string, error) {
	b, err := abi.HeaderMapPairs(abi.MapRequestHeaders)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, types.ErrorStatusNotFound
	}
	return parsePairs(b)
}

func responseHeader(name string) (string, bool) {
	b, err := abi.HeaderMapValue(abi.MapResponseHeaders, name)
	return hostString(b), err == nil
}

func property(p propertyPath) ([]byte, error) { return abi.Property(p.raw) }

func sharedData(key string) ([]byte, uint32, error) { return abi.SharedData(key) }

var errPairs = errors.New("malformed header map")
