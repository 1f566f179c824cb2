// Command authz is the meshwasm authorization filter as its own Wasm module.
package main

import (
	"github.com/meshwasm/meshwasm/filters/authz"
	_ "github.com/meshwasm/meshwasm/filters/internal/abi"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
)

func init() { registry.Register(authz.Filter) }

func main() {}
