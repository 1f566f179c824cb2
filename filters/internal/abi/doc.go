// Package abi wires tetratelabs/proxy-wasm-go-sdk v0.24.0 to the proxy-wasm ABI
// under the upstream Go toolchain (GOOS=wasip1, -buildmode=c-shared).
//
// The SDK declares its callbacks with TinyGo's //export and, outside TinyGo,
// sends every host call through a replaceable host interface. This package
// supplies both halves: //go:wasmexport functions for every callback Envoy
// calls, each forwarding to the SDK's own dispatch, and a host whose methods
// are //go:wasmimport calls into Envoy. Filter code therefore uses only the
// SDK's public API (proxywasm, types).
//
// It also owns two invariants the SDK cannot provide here:
//   - memory handed to the host by proxy_on_memory_allocate stays reachable
//     until the outermost callback returns, because the host holds the only
//     copy of its address while Go's collector may run;
//   - no panic escapes a callback: an escaped panic traps the VM and Envoy
//     then fails every later request on that worker.
//
// Import it for its side effects from a filter's main package:
//
//	import _ "github.com/meshwasm/meshwasm/filters/internal/abi"
//
// See https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1 and
// RATIONALE.md for why linkname was chosen.
package abi
