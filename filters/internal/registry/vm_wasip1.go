//go:build wasip1

package registry

import "github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

// In a module the registry is the VM context: the bridge (filters/internal/abi)
// forwards Envoy's callbacks to the SDK, which calls this.
func init() { proxywasm.SetVMContext(VMContext()) }
