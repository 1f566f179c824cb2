// Package e2e holds the end-to-end tests that run meshwasm filters in a real, stock
// Envoy. They need the build tag e2e and an Envoy binary (scripts/ensure-envoy.sh):
//
//	go test -tags e2e ./e2e/...
//
// The topology itself (processes, bootstrap, certificates) lives in e2e/harness. The
// untagged tests here check that the docker compose variant (e2e/docker-compose.yaml)
// stays consistent with the native topology.
package e2e
