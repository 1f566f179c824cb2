// Command suite carries all four meshwasm filters in one module. Each Envoy
// plugin picks its filter by root id (authz, ratelimit, canary, tracing);
// plugins that also share a vm_id run in one Go runtime per worker instead of
// four.
package main

import (
	"github.com/meshwasm/meshwasm/filters/authz"
	"github.com/meshwasm/meshwasm/filters/canary"
	_ "github.com/meshwasm/meshwasm/filters/internal/abi"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
	"github.com/meshwasm/meshwasm/filters/ratelimit"
	"github.com/meshwasm/meshwasm/filters/tracing"
)

func init() {
	registry.Register(authz.Filter)
	registry.Register(ratelimit.Filter)
	registry.Register(canary.Filter)
	registry.Register(tracing.Filter)
}

func main() {}
