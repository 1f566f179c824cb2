//go:build wasip1

package abi

import (
	"unsafe"
)

// sdkHost mirrors the SDK's internal ProxyWasmHost interface method for
// method. The SDK's named parameter types (LogLevel, MapType, BufferType,
// StreamType, MetricType, Status) are all uint32, and an interface's method
// table is laid out by method name, so a value of this interface is
// interchangeable with the SDK's at the machine level. The linkname below
// hands our host to the SDK's non-TinyGo host-call path.
type sdkHost interface {
	ProxyLog(logLevel uint32, messageData *byte, messageSize int) uint32
	ProxySetProperty(pathData *byte, pathSize int, valueData *byte, valueSize int) uint32
	ProxyGetProperty(pathData *byte, pathSize int, returnValueData **byte, returnValueSize *int) uint32
	ProxySendLocalResponse(statusCode uint32, statusCodeDetailData *byte, statusCodeDetailsSize int, bodyData *byte, bodySize int, headersData *byte, headersSize int, grpcStatus int32) uint32
	ProxyGetSharedData(keyData *byte, keySize int, returnValueData **byte, returnValueSize *int, returnCas *uint32) uint32
	ProxySetSharedData(keyData *byte, keySize int, valueData *byte, valueSize int, cas uint32) uint32
	ProxyRegisterSharedQueue(nameData *byte, nameSize int, returnID *uint32) uint32
	ProxyResolveSharedQueue(vmIDData *byte, vmIDSize int, nameData *byte, nameSize int, returnID *uint32) uint32
	ProxyDequeueSharedQueue(queueID uint32, returnValueData **byte, returnValueSize *int) uint32
	ProxyEnqueueSharedQueue(queueID uint32, valueData *byte, valueSize int) uint32
	ProxyGetHeaderMapValue(mapType uint32, keyData *byte, keySize int, returnValueData **byte, returnValueSize *int) uint32
	ProxyAddHeaderMapValue(mapType uint32, keyData *byte, keySize int, valueData *byte, valueSize int) uint32
	ProxyReplaceHeaderMapValue(mapType uint32, keyData *byte, keySize int, valueData *byte, valueSize int) uint32
	ProxyContinueStream(streamType uint32) uint32
	ProxyCloseStream(streamType uint32) uint32
	ProxyRemoveHeaderMapValue(mapType uint32, keyData *byte, keySize int) uint32
	ProxyGetHeaderMapPairs(mapType uint32, returnValueData **byte, returnValueSize *int) uint32
	ProxySetHeaderMapPairs(mapType uint32, mapData *byte, mapSize int) uint32
	ProxyGetBufferBytes(bufferType uint32, start int, maxSize int, returnBufferData **byte, returnBufferSize *int) uint32
	ProxySetBufferBytes(bufferType uint32, start int, maxSize int, bufferData *byte, bufferSize int) uint32
	ProxyHttpCall(upstreamData *byte, upstreamSize int, headerData *byte, headerSize int, bodyData *byte, bodySize int, trailersData *byte, trailersSize int, timeout uint32, calloutIDPtr *uint32) uint32
	ProxyCallForeignFunction(funcNamePtr *byte, funcNameSize int, paramPtr *byte, paramSize int, returnData **byte, returnSize *int) uint32
	ProxySetTickPeriodMilliseconds(period uint32) uint32
	ProxySetEffectiveContext(contextID uint32) uint32
	ProxyDone() uint32
	ProxyDefineMetric(metricType uint32, metricNameData *byte, metricNameSize int, returnMetricIDPtr *uint32) uint32
	ProxyIncrementMetric(metricID uint32, offset int64) uint32
	ProxyRecordMetric(metricID uint32, value uint64) uint32
	ProxyGetMetric(metricID uint32, returnMetricValue *uint64) uint32
}

//go:linkname sdkRegisterHost github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.RegisterMockWasmHost
func sdkRegisterHost(host sdkHost) (release func())

func init() {
	// The registration holds the SDK's host mutex for the life of the VM;
	// nothing else in a wasm module ever registers a host.
	sdkRegisterHost(envoyHost{})
	if retainHost {
		retainHostMethods(envoyHost{})
	}
}

// retainHost is never set. The linker keeps a method only if some live code
// calls a method of that name and signature through an interface; the SDK's
// calls use its own named types (Status, MapType, ...), which it cannot match
// against ours, so without these calls every host method would be discarded
// and the first host call would trap with "unreachable method called".
var retainHost bool

func retainHostMethods(h sdkHost) {
	var (
		b  *byte
		bp **byte
		n  *int
		u  *uint32
		w  *uint64
	)
	h.ProxyLog(0, b, 0)
	h.ProxySetProperty(b, 0, b, 0)
	h.ProxyGetProperty(b, 0, bp, n)
	h.ProxySendLocalResponse(0, b, 0, b, 0, b, 0, 0)
	h.ProxyGetSharedData(b, 0, bp, n, u)
	h.ProxySetSharedData(b, 0, b, 0, 0)
	h.ProxyRegisterSharedQueue(b, 0, u)
	h.ProxyResolveSharedQueue(b, 0, b, 0, u)
	h.ProxyDequeueSharedQueue(0, bp, n)
	h.ProxyEnqueueSharedQueue(0, b, 0)
	h.ProxyGetHeaderMapValue(0, b, 0, bp, n)
	h.ProxyAddHeaderMapValue(0, b, 0, b, 0)
	h.ProxyReplaceHeaderMapValue(0, b, 0, b, 0)
	h.ProxyContinueStream(0)
	h.ProxyCloseStream(0)
	h.ProxyRemoveHeaderMapValue(0, b, 0)
	h.ProxyGetHeaderMapPairs(0, bp, n)
	h.ProxySetHeaderMapPairs(0, b, 0)
	h.ProxyGetBufferBytes(0, 0, 0, bp, n)
	h.ProxySetBufferBytes(0, 0, 0, b, 0)
	h.ProxyHttpCall(b, 0, b, 0, b, 0, b, 0, 0, u)
	h.ProxyCallForeignFunction(b, 0, b, 0, bp, n)
	h.ProxySetTickPeriodMilliseconds(0)
	h.ProxySetEffectiveContext(0)
	h.ProxyDone()
	h.ProxyDefineMetric(0, b, 0, u)
	h.ProxyIncrementMetric(0, 0)
	h.ProxyRecordMetric(0, 0)
	h.ProxyGetMetric(0, w)
}

// outSlots are where the host writes results. They live in static memory
// rather than on a goroutine stack because the host writes them while Go
// code (proxy_on_memory_allocate) may run in between; a stack can move, a
// global cannot. Nesting is rare (a host call that re-enters a callback
// which makes host calls) but bounded here rather than assumed away.
type outSlot struct {
	data, size, extra uint32
	wide              uint64
}

var (
	outSlots [8]outSlot
	outDepth int
)

func takeSlot() *outSlot {
	var s *outSlot
	if outDepth < len(outSlots) {
		s = &outSlots[outDepth]
	} else {
		s = new(outSlot) // deeper than any host is known to nest
	}
	outDepth++
	*s = outSlot{}
	return s
}

func releaseSlot() { outDepth-- }

func ptr(b *byte) unsafe.Pointer { return unsafe.Pointer(b) }

// guestPtr turns an address the host wrote into a Go pointer. The memory it
// names was allocated by onMemoryAllocate and is pinned until the callback
// returns; by then the SDK holds it through ordinary Go pointers.
func guestPtr(addr uint32) *byte {
	if addr == 0 {
		return nil
	}
	return (*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(addr)))
}

func (s *outSlot) writeBuffer(data **byte, size *int) {
	*data = guestPtr(s.data)
	*size = int(s.size)
}

type envoyHost struct{}

func (envoyHost) ProxyLog(level uint32, msg *byte, msgSize int) uint32 {
	return hostLog(level, ptr(msg), uint32(msgSize))
}

func (envoyHost) ProxySetProperty(path *byte, pathSize int, value *byte, valueSize int) uint32 {
	return hostSetProperty(ptr(path), uint32(pathSize), ptr(value), uint32(valueSize))
}

func (envoyHost) ProxyGetProperty(path *byte, pathSize int, retData **byte, retSize *int) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostGetProperty(ptr(path), uint32(pathSize), unsafe.Pointer(&s.data), unsafe.Pointer(&s.size))
	s.writeBuffer(retData, retSize)
	return st
}

func (envoyHost) ProxySendLocalResponse(status uint32, details *byte, detailsSize int, body *byte, bodySize int, headers *byte, headersSize int, grpcStatus int32) uint32 {
	return hostSendLocalResponse(status, ptr(details), uint32(detailsSize), ptr(body), uint32(bodySize), ptr(headers), uint32(headersSize), grpcStatus)
}

func (envoyHost) ProxyGetSharedData(key *byte, keySize int, retData **byte, retSize *int, retCas *uint32) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostGetSharedData(ptr(key), uint32(keySize), unsafe.Pointer(&s.data), unsafe.Pointer(&s.size), unsafe.Pointer(&s.extra))
	s.writeBuffer(retData, retSize)
	*retCas = s.extra
	return st
}

func (envoyHost) ProxySetSharedData(key *byte, keySize int, value *byte, valueSize int, cas uint32) uint32 {
	return hostSetSharedData(ptr(key), uint32(keySize), ptr(value), uint32(valueSize), cas)
}

func (envoyHost) ProxyRegisterSharedQueue(name *byte, nameSize int, retID *uint32) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostRegisterSharedQueue(ptr(name), uint32(nameSize), unsafe.Pointer(&s.extra))
	*retID = s.extra
	return st
}

func (envoyHost) ProxyResolveSharedQueue(vmID *byte, vmIDSize int, name *byte, nameSize int, retID *uint32) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostResolveSharedQueue(ptr(vmID), uint32(vmIDSize), ptr(name), uint32(nameSize), unsafe.Pointer(&s.extra))
	*retID = s.extra
	return st
}

func (envoyHost) ProxyDequeueSharedQueue(queueID uint32, retData **byte, retSize *int) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostDequeueSharedQueue(queueID, unsafe.Pointer(&s.data), unsafe.Pointer(&s.size))
	s.writeBuffer(retData, retSize)
	return st
}

func (envoyHost) ProxyEnqueueSharedQueue(queueID uint32, value *byte, valueSize int) uint32 {
	return hostEnqueueSharedQueue(queueID, ptr(value), uint32(valueSize))
}

func (envoyHost) ProxyGetHeaderMapValue(mapType uint32, key *byte, keySize int, retData **byte, retSize *int) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostGetHeaderMapValue(mapType, ptr(key), uint32(keySize), unsafe.Pointer(&s.data), unsafe.Pointer(&s.size))
	s.writeBuffer(retData, retSize)
	return st
}

func (envoyHost) ProxyAddHeaderMapValue(mapType uint32, key *byte, keySize int, value *byte, valueSize int) uint32 {
	return hostAddHeaderMapValue(mapType, ptr(key), uint32(keySize), ptr(value), uint32(valueSize))
}

func (envoyHost) ProxyReplaceHeaderMapValue(mapType uint32, key *byte, keySize int, value *byte, valueSize int) uint32 {
	return hostReplaceHeaderMapValue(mapType, ptr(key), uint32(keySize), ptr(value), uint32(valueSize))
}

func (envoyHost) ProxyContinueStream(streamType uint32) uint32 { return hostContinueStream(streamType) }

func (envoyHost) ProxyCloseStream(streamType uint32) uint32 { return hostCloseStream(streamType) }

func (envoyHost) ProxyRemoveHeaderMapValue(mapType uint32, key *byte, keySize int) uint32 {
	return hostRemoveHeaderMapValue(mapType, ptr(key), uint32(keySize))
}

func (envoyHost) ProxyGetHeaderMapPairs(mapType uint32, retData **byte, retSize *int) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostGetHeaderMapPairs(mapType, unsafe.Pointer(&s.data), unsafe.Pointer(&s.size))
	s.writeBuffer(retData, retSize)
	return st
}

func (envoyHost) ProxySetHeaderMapPairs(mapType uint32, data *byte, size int) uint32 {
	return hostSetHeaderMapPairs(mapType, ptr(data), uint32(size))
}

func (envoyHost) ProxyGetBufferBytes(bufferType uint32, start, maxSize int, retData **byte, retSize *int) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostGetBufferBytes(bufferType, uint32(start), uint32(maxSize), unsafe.Pointer(&s.data), unsafe.Pointer(&s.size))
	s.writeBuffer(retData, retSize)
	return st
}

func (envoyHost) ProxySetBufferBytes(bufferType uint32, start, maxSize int, data *byte, size int) uint32 {
	return hostSetBufferBytes(bufferType, uint32(start), uint32(maxSize), ptr(data), uint32(size))
}

func (envoyHost) ProxyHttpCall(upstream *byte, upstreamSize int, headers *byte, headersSize int, body *byte, bodySize int, trailers *byte, trailersSize int, timeout uint32, calloutID *uint32) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostHttpCall(ptr(upstream), uint32(upstreamSize), ptr(headers), uint32(headersSize), ptr(body), uint32(bodySize), ptr(trailers), uint32(trailersSize), timeout, unsafe.Pointer(&s.extra))
	*calloutID = s.extra
	return st
}

func (envoyHost) ProxyCallForeignFunction(name *byte, nameSize int, param *byte, paramSize int, retData **byte, retSize *int) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostCallForeignFunction(ptr(name), uint32(nameSize), ptr(param), uint32(paramSize), unsafe.Pointer(&s.data), unsafe.Pointer(&s.size))
	s.writeBuffer(retData, retSize)
	return st
}

func (envoyHost) ProxySetTickPeriodMilliseconds(period uint32) uint32 {
	return hostSetTickPeriodMilliseconds(period)
}

func (envoyHost) ProxySetEffectiveContext(contextID uint32) uint32 {
	return hostSetEffectiveContext(contextID)
}

func (envoyHost) ProxyDone() uint32 { return hostDone() }

func (envoyHost) ProxyDefineMetric(metricType uint32, name *byte, nameSize int, retID *uint32) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostDefineMetric(metricType, ptr(name), uint32(nameSize), unsafe.Pointer(&s.extra))
	*retID = s.extra
	return st
}

func (envoyHost) ProxyIncrementMetric(metricID uint32, offset int64) uint32 {
	return hostIncrementMetric(metricID, offset)
}

func (envoyHost) ProxyRecordMetric(metricID uint32, value uint64) uint32 {
	return hostRecordMetric(metricID, value)
}

func (envoyHost) ProxyGetMetric(metricID uint32, retValue *uint64) uint32 {
	s := takeSlot()
	defer releaseSlot()
	st := hostGetMetric(metricID, unsafe.Pointer(&s.wide))
	*retValue = s.wide
	return st
}
