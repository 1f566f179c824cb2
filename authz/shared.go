package authz

import "github.com/meshwasm/meshwasm/internal/casstore"

// SharedData is Envoy's cross-worker key/value store, where the engine keeps
// fetched key sets and ext-authz verdicts. There is no delete and no TTL, so
// the engine only ever uses a bounded set of keys. A read error counts as a
// missing key: nothing shared yet, so fetch keys or ask the service.
type SharedData = casstore.Store

// ErrCASMismatch is what SharedData.Set returns when another worker wrote
// first.
var ErrCASMismatch = casstore.ErrCASMismatch
