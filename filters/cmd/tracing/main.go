// Command tracing is the meshwasm tracing filter as its own Wasm module.
package main

import (
	_ "github.com/meshwasm/meshwasm/filters/internal/abi"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
	"github.com/meshwasm/meshwasm/filters/tracing"
)

func init() { registry.Register(tracing.Filter) }

func main() {}
