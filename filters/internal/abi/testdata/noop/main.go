// Command noop is the smallest possible meshwasm module: one filter that
// passes every request untouched. Its per-request cost on the wazero host is
// the baseline every filter's benchmark is divided by.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	_ "github.com/meshwasm/meshwasm/filters/internal/abi"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
)

func main() {}

func init() {
	registry.Register(registry.Filter{
		Name:             "noop",
		NewPluginContext: func(uint32) types.PluginContext { return &plugin{} },
	})
}

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
