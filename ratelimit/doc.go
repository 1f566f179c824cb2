// Package ratelimit owns the rate-limiting decision of the meshwasm ratelimit
// filter: parsing its JSON configuration once, matching requests to rules,
// building per-client keys, running the four local algorithms (token bucket,
// leaky bucket with shaping, fixed window, sliding window) as pure state
// transitions over counters kept in a shared compare-and-swap store, encoding
// and decoding calls to the envoyproxy/ratelimit JSON API for global rules,
// and formatting 429 responses.
//
// It is pure Go: no proxy-wasm SDK, no host calls. The filter layer supplies a
// [Request] view, a [Store] over Envoy shared data, a clock and, optionally, a
// [Recorder] for metrics. A [Limiter] is not safe for concurrent use: Envoy
// runs one single-threaded VM per worker and each VM owns one Limiter; the
// workers meet only in the Store.
//
// Response headers follow the IETF httpapi RateLimit header fields draft:
// See https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/
// Global rules speak the envoyproxy/ratelimit HTTP JSON API:
// See https://github.com/envoyproxy/ratelimit#http-port
package ratelimit
