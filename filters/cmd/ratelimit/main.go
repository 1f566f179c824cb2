// Command ratelimit is the meshwasm rate-limit filter as its own Wasm module.
package main

import (
	_ "github.com/meshwasm/meshwasm/filters/internal/abi"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
	"github.com/meshwasm/meshwasm/filters/ratelimit"
)

func init() { registry.Register(ratelimit.Filter) }

func main() {}
