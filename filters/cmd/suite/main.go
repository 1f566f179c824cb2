// Command suite carries all four meshwasm filters in one module, plus the
// pipeline that runs them as one plugin. Each Envoy plugin picks its filter by
// root id (authz, ratelimit, canary, tracing, pipeline). Plugins that share a
// vm_id run in one Go runtime per worker instead of four; the pipeline goes
// further and runs the four filters in one plugin, with one set of callbacks
// and one header read per request.
package main

import (
	"github.com/meshwasm/meshwasm/filters/authz"
	"github.com/meshwasm/meshwasm/filters/canary"
	_ "github.com/meshwasm/meshwasm/filters/internal/abi"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
	"github.com/meshwasm/meshwasm/filters/pipeline"
	"github.com/meshwasm/meshwasm/filters/ratelimit"
	"github.com/meshwasm/meshwasm/filters/tracing"
)

func init() {
	registry.Register(authz.Filter)
	registry.Register(ratelimit.Filter)
	registry.Register(canary.Filter)
	registry.Register(tracing.Filter)
	registry.Register(pipeline.Filter)
}

func main() {}
