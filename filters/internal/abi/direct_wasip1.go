//go:build wasip1

package abi

import "unsafe"

// Direct host reads for filters/internal/hostview, which turns host calls
// into core inputs on every request. They make the same calls the SDK
// makes, but not through the SDK's host interface: a pointer passed to an
// interface method escapes, so each SDK read that returns data costs two
// heap allocations for its out-parameters (and GetProperty a third, for the
// serialized path) before the data itself. On Wasm an allocation costs
// hundreds of nanoseconds; these read into the static out slots instead.
// Errors are the SDK's own values (types.ErrorStatus...), so callers match
// them as they would the SDK's.

//go:linkname sdkStatusToError github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.StatusToError
func sdkStatusToError(status uint32) error

// Header map types of the ABI.
const (
	MapRequestHeaders  = 0
	MapResponseHeaders = 2
)

func slotBytes(s *outSlot) []byte {
	if s.data == 0 {
		return nil
	}
	return unsafe.Slice(guestPtr(s.data), s.size)
}

// HeaderMapPairs returns a header map in the ABI's serialized form
// (proxy_get_header_map_pairs).
func HeaderMapPairs(mapType uint32) ([]byte, error) {
	s := takeSlot()
	defer releaseSlot()
	if err := sdkStatusToError(hostGetHeaderMapPairs(mapType, unsafe.Pointer(&s.data), unsafe.Pointer(&s.size))); err != nil {
		return nil, err
	}
	return slotBytes(s), nil
}

// HeaderMapValue returns one header's value (proxy_get_header_map_value):
// Envoy answers the first value of a repeated header.
func HeaderMapValue(mapType uint32, name string) ([]byte, error) {
	s := takeSlot()
	defer releaseSlot()
	key := unsafe.StringData(name)
	if err := sdkStatusToError(hostGetHeaderMapValue(mapType, unsafe.Pointer(key), uint32(len(name)), unsafe.Pointer(&s.data), unsafe.Pointer(&s.size))); err != nil {
		return nil, err
	}
	return slotBytes(s), nil
}

// Property returns a property by its serialized path: segments joined by NUL
// (proxy_get_property).
func Property(path []byte) ([]byte, error) {
	s := takeSlot()
	defer releaseSlot()
	if err := sdkStatusToError(hostGetProperty(unsafe.Pointer(unsafe.SliceData(path)), uint32(len(path)), unsafe.Pointer(&s.data), unsafe.Pointer(&s.size))); err != nil {
		return nil, err
	}
	return slotBytes(s), nil
}

// SharedData returns a shared-data value and its CAS (proxy_get_shared_data).
func SharedData(key string) ([]byte, uint32, error) {
	s := takeSlot()
	defer releaseSlot()
	k := unsafe.StringData(key)
	if err := sdkStatusToError(hostGetSharedData(unsafe.Pointer(k), uint32(len(key)), unsafe.Pointer(&s.data), unsafe.Pointer(&s.size), unsafe.Pointer(&s.extra))); err != nil {
		return nil, 0, err
	}
	return slotBytes(s), s.extra, nil
}
