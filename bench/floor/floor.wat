;; The smallest proxy-wasm HTTP filter: every callback returns at once.
;; `make bench` assembles it (binaryen's wasm-as) and loads it into Envoy as
;; the "floor" scenario: what Envoy's wasm filter and V8 cost per request
;; before any module code runs, so the no-op Go module's figure splits into
;; Envoy's share and Go's.
(module
  (memory (export "memory") 2)
  ;; Bump allocator for the host's writes (configuration, header maps). The
  ;; module never reads them, so the region is reused from the start when full.
  (global $next (mut i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (if (i32.gt_u (i32.add (global.get $next) (local.get $size)) (i32.const 131072))
      (then (global.set $next (i32.const 1024))))
    (if (i32.gt_u (local.get $size) (i32.const 130048))
      (then (return (i32.const 0))))
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (i32.and (i32.add (local.get $size) (i32.const 7)) (i32.const -8))))
    (local.get $at))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32)))
