# meshwasm: Envoy HTTP filters in Go, compiled to WebAssembly.
#
#   make build   compile every module into build/
#   make test    unit, compiled-module and real-Envoy tests (what CI runs)
#   make unit    the fast subset: no Envoy
#   make e2e     real-Envoy tests only
#   make bench   microbenchmarks and module sizes
#   make lint    gofmt, go vet, staticcheck
#   make image   OCI images (Istio "compat" variant) in build/images; pushed when REGISTRY is set
#   make demo    (see README)

GO            ?= go
BUILD         ?= build
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TOOLS         := $(abspath .tools/bin)
WASM_ENV      := GOOS=wasip1 GOARCH=wasm
WASM_FLAGS    := -buildmode=c-shared -trimpath -ldflags='-s -w'

# Production modules: one per filter plus the suite, each a main package
# under filters/cmd. Test modules live in testdata and are never shipped.
MODULES       := $(notdir $(wildcard filters/cmd/*))
TEST_MODULES  := conformance noop

export MESHWASM_BUILD := $(abspath $(BUILD))

.PHONY: build test unit e2e bench lint clean envoy image

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

test: unit e2e

unit: build
	$(GO) test -count=1 ./...

envoy:
	@scripts/ensure-envoy.sh

e2e: build envoy
	$(GO) test -count=1 -tags e2e -timeout 30m ./e2e/...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...
	@echo; echo "module sizes (bytes):"; ls -l $(BUILD)/*.wasm | awk '{printf "  %-28s %10d\n", $$9, $$5}'

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(WASM_ENV) $(GO) vet ./filters/...
	$(GO) vet -tags e2e ./e2e/...
	@GOBIN=$(TOOLS) $(GO) install $(STATICCHECK)
	$(TOOLS)/staticcheck ./...
	$(WASM_ENV) $(TOOLS)/staticcheck ./filters/...

image: build
	$(GO) run ./tools/wasm-image -layout $(BUILD)/images -tag $(or $(TAG),latest) $(MODULES:%=$(BUILD)/%.wasm)

clean:
	rm -rf $(BUILD)
