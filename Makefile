# meshwasm: Envoy HTTP filters in Go, compiled to WebAssembly.
#
#   make build   compile every module into build/
#   make test    unit, compiled-module and real-Envoy tests (what CI runs)
#   make unit    the fast subset: no Envoy
#   make e2e     real-Envoy tests only
#   make bench   the filters in Envoy side by side with Envoy's native twins, memory,
#                startup, module sizes, microbenchmarks, where Envoy's CPU goes
#                (perf): bench/results/latest.{md,json}
#                (~15 min; BENCH_FULL=1 for long runs and 1M requests)
#   make fuzz    every fuzz target for FUZZTIME each (default 30s); seeds run in `make unit`
#   make soak    SOAK_DURATION (default 10m) of mixed traffic through the four filters
#                in Envoy with fortio; `make e2e` runs the same test for 20 s
#   make lint    gofmt, go vet, staticcheck
#   make image   OCI images (Istio "compat" variant) in build/images; pushed when REGISTRY is set
#   make demo    run the four filters chained in Envoy and show what each does
#                (KEEP=1 leaves it running for curl; DEMO=compose uses docker compose)

GO            ?= go
BUILD         ?= build
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TOOLS         := $(abspath .tools/bin)
WASM_ENV      := GOOS=wasip1 GOARCH=wasm
WASM_FLAGS    := -buildmode=c-shared -trimpath -ldflags='-s -w'
WASM_OPT_FLAGS := -Oz --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals

# Production modules: one per filter plus the suite, each a main package
# under filters/cmd. Test modules live in testdata and are never shipped.
MODULES       := $(notdir $(wildcard filters/cmd/*))
TEST_MODULES  := conformance noop

export MESHWASM_BUILD := $(abspath $(BUILD))

FUZZTIME      ?= 30s
SOAK_DURATION ?= 10m

.PHONY: build test unit e2e bench lint clean envoy image demo fuzz soak

build:
	@mkdir -p $(BUILD)
	@set -e; for m in $(MODULES); do \
		echo "build $(BUILD)/$$m.wasm"; \
		$(WASM_ENV) $(GO) build $(WASM_FLAGS) -o $(BUILD)/$$m.wasm ./filters/cmd/$$m; \
	done
	@set -e; for m in $(TEST_MODULES); do \
		echo "build $(BUILD)/$$m.wasm (test module)"; \
		$(WASM_ENV) $(GO) build $(WASM_FLAGS) -o $(BUILD)/$$m.wasm ./filters/internal/abi/testdata/$$m; \
	done
	@# WASM_OPT=1 shrinks the production modules by 5-7% with Debian's binaryen
	@# (make bench checks that Envoy loads and runs the result); off by default:
	@# it takes 30-80 s per module.
	@set -e; if [ -n "$(WASM_OPT)" ]; then for m in $(MODULES); do \
		echo "wasm-opt $(BUILD)/$$m.wasm"; \
		wasm-opt $(WASM_OPT_FLAGS) $(BUILD)/$$m.wasm -o $(BUILD)/$$m.wasm; \
	done; fi

test: unit e2e

unit: build
	$(GO) test -count=1 ./...

envoy:
	@scripts/ensure-envoy.sh

e2e: build envoy
	$(GO) test -count=1 -tags e2e -timeout 30m ./e2e/...

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# fortio is installed at its pinned release by scripts/ensure-fortio.sh on first use.
soak: build envoy
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -tags e2e -run '^TestSoak_' -timeout 3h -v ./e2e/

# The bench harness is Go behind the `bench` build tag (bench/), so that
# `go test ./...` never starts it. Tools are pinned by their scripts.
bench: build envoy
	@scripts/ensure-fortio.sh >/dev/null
	$(GO) test -tags bench -run '^TestBench$$' -count=1 -timeout 90m -v ./bench

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(WASM_ENV) $(GO) vet ./filters/...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) vet -tags bench ./bench/...
	@GOBIN=$(TOOLS) $(GO) install $(STATICCHECK)
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/staticcheck -tags bench ./bench/...
	$(WASM_ENV) $(TOOLS)/staticcheck ./filters/...

image: build
	$(GO) run ./tools/wasm-image -layout $(BUILD)/images -tag $(or $(TAG),latest) $(MODULES:%=$(BUILD)/%.wasm)

# The demo is a Go program on the e2e harness (e2e/cmd/demo): the native topology of
# the e2e tests with envoy/chain/envoy-suite.yaml. Envoy is installed first so that a
# fresh machine sees the progress.
demo: build $(if $(filter compose,$(DEMO)),,envoy)
	@$(GO) build -o $(BUILD)/demo ./e2e/cmd/demo
	@$(BUILD)/demo $(if $(KEEP),--keep) $(if $(filter compose,$(DEMO)),--compose)

clean:
	rm -rf $(BUILD)
