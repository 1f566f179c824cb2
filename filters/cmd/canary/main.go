// Command canary is the canary filter alone in one module (root id "canary").
package main

import (
	"github.com/meshwasm/meshwasm/filters/canary"
	_ "github.com/meshwasm/meshwasm/filters/internal/abi"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
)

func init() { registry.Register(canary.Filter) }

func main() {}
