//go:build wasip1

package abi

//lint:file-ignore U1000 these functions are called by the host through //go:wasmexport, which staticcheck does not see

import (
	"unsafe"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// The SDK's dispatch functions. v0.24.0 is the SDK's final release (the
// repository is archived), so these unexported names cannot drift; the
// conformance tests in this package exercise every one of them.

//go:linkname sdkOnVMStart github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnVMStart
func sdkOnVMStart(rootContextID uint32, vmConfigurationSize int) types.OnVMStartStatus

//go:linkname sdkOnConfigure github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnConfigure
func sdkOnConfigure(rootContextID uint32, pluginConfigurationSize int) types.OnPluginStartStatus

//go:linkname sdkOnContextCreate github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnContextCreate
func sdkOnContextCreate(contextID, parentContextID uint32)

//go:linkname sdkOnRequestHeaders github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnRequestHeaders
func sdkOnRequestHeaders(contextID uint32, numHeaders int, endOfStream bool) types.Action

//go:linkname sdkOnRequestBody github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnRequestBody
func sdkOnRequestBody(contextID uint32, bodySize int, endOfStream bool) types.Action

//go:linkname sdkOnRequestTrailers github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnRequestTrailers
func sdkOnRequestTrailers(contextID uint32, numTrailers int) types.Action

//go:linkname sdkOnResponseHeaders github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnResponseHeaders
func sdkOnResponseHeaders(contextID uint32, numHeaders int, endOfStream bool) types.Action

//go:linkname sdkOnResponseBody github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnResponseBody
func sdkOnResponseBody(contextID uint32, bodySize int, endOfStream bool) types.Action

//go:linkname sdkOnResponseTrailers github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnResponseTrailers
func sdkOnResponseTrailers(contextID uint32, numTrailers int) types.Action

//go:linkname sdkOnLog github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnLog
func sdkOnLog(contextID uint32)

//go:linkname sdkOnDone github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnDone
func sdkOnDone(contextID uint32) bool

//go:linkname sdkOnDelete github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnDelete
func sdkOnDelete(contextID uint32)

//go:linkname sdkOnHttpCallResponse github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnHttpCallResponse
func sdkOnHttpCallResponse(rootContextID, calloutID uint32, numHeaders, bodySize, numTrailers int)

//go:linkname sdkOnTick github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnTick
func sdkOnTick(rootContextID uint32)

//go:linkname sdkOnQueueReady github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnQueueReady
func sdkOnQueueReady(rootContextID, queueID uint32)

//go:linkname sdkOnNewConnection github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnNewConnection
func sdkOnNewConnection(contextID uint32) types.Action

//go:linkname sdkOnDownstreamData github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnDownstreamData
func sdkOnDownstreamData(contextID uint32, dataSize int, endOfStream bool) types.Action

//go:linkname sdkOnDownstreamConnectionClose github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnDownstreamConnectionClose
func sdkOnDownstreamConnectionClose(contextID uint32, peer types.PeerType)

//go:linkname sdkOnUpstreamData github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnUpstreamData
func sdkOnUpstreamData(contextID uint32, dataSize int, endOfStream bool) types.Action

//go:linkname sdkOnUpstreamConnectionClose github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.proxyOnUpstreamConnectionClose
func sdkOnUpstreamConnectionClose(contextID uint32, peer types.PeerType)

var mem pinner

//go:wasmexport proxy_abi_version_0_2_0
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) uint32 {
	buf := mem.alloc(size)
	return uint32(uintptr(unsafe.Pointer(&buf[0])))
}

//go:wasmexport proxy_on_vm_start
func onVMStart(rootContextID, vmConfigurationSize uint32) (ok uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverLifecycle("proxy_on_vm_start", &ok, 0)
	return b2u(bool(sdkOnVMStart(rootContextID, int(vmConfigurationSize))))
}

//go:wasmexport proxy_on_configure
func onConfigure(rootContextID, pluginConfigurationSize uint32) (ok uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverLifecycle("proxy_on_configure", &ok, 0)
	return b2u(bool(sdkOnConfigure(rootContextID, int(pluginConfigurationSize))))
}

//go:wasmexport proxy_on_context_create
func onContextCreate(contextID, parentContextID uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverVoid("proxy_on_context_create")
	sdkOnContextCreate(contextID, parentContextID)
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(contextID, numHeaders, endOfStream uint32) (action uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverRequest("proxy_on_request_headers", &action)
	return uint32(sdkOnRequestHeaders(contextID, int(numHeaders), endOfStream != 0))
}

//go:wasmexport proxy_on_request_body
func onRequestBody(contextID, bodySize, endOfStream uint32) (action uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverRequest("proxy_on_request_body", &action)
	return uint32(sdkOnRequestBody(contextID, int(bodySize), endOfStream != 0))
}

//go:wasmexport proxy_on_request_trailers
func onRequestTrailers(contextID, numTrailers uint32) (action uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverRequest("proxy_on_request_trailers", &action)
	return uint32(sdkOnRequestTrailers(contextID, int(numTrailers)))
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(contextID, numHeaders, endOfStream uint32) (action uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverResponse("proxy_on_response_headers", &action)
	return uint32(sdkOnResponseHeaders(contextID, int(numHeaders), endOfStream != 0))
}

//go:wasmexport proxy_on_response_body
func onResponseBody(contextID, bodySize, endOfStream uint32) (action uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverResponse("proxy_on_response_body", &action)
	return uint32(sdkOnResponseBody(contextID, int(bodySize), endOfStream != 0))
}

//go:wasmexport proxy_on_response_trailers
func onResponseTrailers(contextID, numTrailers uint32) (action uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverResponse("proxy_on_response_trailers", &action)
	return uint32(sdkOnResponseTrailers(contextID, int(numTrailers)))
}

//go:wasmexport proxy_on_log
func onLog(contextID uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverVoid("proxy_on_log")
	sdkOnLog(contextID)
}

//go:wasmexport proxy_on_done
func onDone(contextID uint32) (done uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverLifecycle("proxy_on_done", &done, 1)
	return b2u(sdkOnDone(contextID))
}

//go:wasmexport proxy_on_delete
func onDelete(contextID uint32) {
	defer yieldAfterDelete() // after mem.exit: unpinned buffers are garbage already
	mem.enter()
	defer mem.exit()
	defer recoverVoid("proxy_on_delete")
	sdkOnDelete(contextID)
}

//go:wasmexport proxy_on_http_call_response
func onHttpCallResponse(rootContextID, calloutID, numHeaders, bodySize, numTrailers uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverVoid("proxy_on_http_call_response")
	sdkOnHttpCallResponse(rootContextID, calloutID, int(numHeaders), int(bodySize), int(numTrailers))
}

//go:wasmexport proxy_on_tick
func onTick(rootContextID uint32) {
	defer yieldAfterTick()
	mem.enter()
	defer mem.exit()
	defer recoverVoid("proxy_on_tick")
	sdkOnTick(rootContextID)
}

//go:wasmexport proxy_on_queue_ready
func onQueueReady(rootContextID, queueID uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverVoid("proxy_on_queue_ready")
	sdkOnQueueReady(rootContextID, queueID)
}

//go:wasmexport proxy_on_new_connection
func onNewConnection(contextID uint32) (action uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverConnection("proxy_on_new_connection", &action)
	return uint32(sdkOnNewConnection(contextID))
}

//go:wasmexport proxy_on_downstream_data
func onDownstreamData(contextID, dataSize, endOfStream uint32) (action uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverConnection("proxy_on_downstream_data", &action)
	return uint32(sdkOnDownstreamData(contextID, int(dataSize), endOfStream != 0))
}

//go:wasmexport proxy_on_downstream_connection_close
func onDownstreamConnectionClose(contextID, peerType uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverVoid("proxy_on_downstream_connection_close")
	sdkOnDownstreamConnectionClose(contextID, types.PeerType(peerType))
}

//go:wasmexport proxy_on_upstream_data
func onUpstreamData(contextID, dataSize, endOfStream uint32) (action uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverConnection("proxy_on_upstream_data", &action)
	return uint32(sdkOnUpstreamData(contextID, int(dataSize), endOfStream != 0))
}

//go:wasmexport proxy_on_upstream_connection_close
func onUpstreamConnectionClose(contextID, peerType uint32) {
	mem.enter()
	defer mem.exit()
	defer recoverVoid("proxy_on_upstream_connection_close")
	sdkOnUpstreamConnectionClose(contextID, types.PeerType(peerType))
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// The recover* functions are the last line of defence. Filter panics are
// caught closer to the filter by the registry, which knows each filter's
// declared safe outcome; reaching these means the SDK itself panicked (for
// example on a context id it does not know), so no filter has vouched for the
// stream and the only safe request outcome is to refuse it.

func recoverRequest(callback string, action *uint32) {
	if r := recover(); r != nil {
		reportPanic(callback, r)
		_ = proxywasm.SendHttpResponse(500, nil, []byte("internal error\n"), -1)
		*action = uint32(types.ActionPause)
	}
}

func recoverResponse(callback string, action *uint32) {
	if r := recover(); r != nil {
		reportPanic(callback, r)
		// Response headers may already be on their way downstream; a local
		// reply is no longer possible, and the request was admitted earlier.
		*action = uint32(types.ActionContinue)
	}
}

func recoverConnection(callback string, action *uint32) {
	if r := recover(); r != nil {
		reportPanic(callback, r)
		_ = proxywasm.CloseDownstream()
		*action = uint32(types.ActionPause)
	}
}

func recoverLifecycle(callback string, result *uint32, onPanic uint32) {
	if r := recover(); r != nil {
		reportPanic(callback, r)
		*result = onPanic
	}
}

func recoverVoid(callback string) {
	if r := recover(); r != nil {
		reportPanic(callback, r)
	}
}
