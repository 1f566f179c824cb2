package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"
)

// noopModule is the real compiled no-op module: the image must carry the
// exact bytes `make build` produced.
func noopModule(t *testing.T) (string, []byte) {
	t.Helper()
	dir := os.Getenv("MESHWASM_BUILD")
	if dir == "" {
		dir = filepath.Join("..", "..", "build")
	}
	path := filepath.Join(dir, "noop.wasm")
	code, err := os.ReadFile(path)
	require.NoError(t, err, "run `make build` first")
	return path, code
}

func TestBuild_CompatImage(t *testing.T) {
	_, code := noopModule(t)
	img, err := Build(code)
	require.NoError(t, err)

	manifest, err := img.Manifest()
	require.NoError(t, err)
	require.Equal(t, types.OCIManifestSchema1, manifest.MediaType)
	require.Equal(t, "compat", manifest.Annotations[VariantAnnotation])
	require.Len(t, manifest.Layers, 1)
	require.Equal(t, types.OCILayer, manifest.Layers[0].MediaType)

	got, err := Module(img)
	require.NoError(t, err)
	require.Equal(t, code, got)

	again, err := Build(code)
	require.NoError(t, err)
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	require.Equal(t, d1, d2, "builds are reproducible")
}

func TestRun_LayoutAndPush(t *testing.T) {
	path, code := noopModule(t)
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	out := filepath.Join(t.TempDir(), "images")

	require.NoError(t, run(out, host+"/meshwasm", "v1", []string{path}))

	// Read back from the OCI layout.
	lp, err := layout.FromPath(out)
	require.NoError(t, err)
	idx, err := lp.ImageIndex()
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	require.Equal(t, "noop:v1", im.Manifests[0].Annotations["org.opencontainers.image.ref.name"])
	img, err := lp.Image(im.Manifests[0].Digest)
	require.NoError(t, err)
	got, err := Module(img)
	require.NoError(t, err)
	require.Equal(t, code, got)

	// And pull it back from the registry it was pushed to.
	ref, err := name.ParseReference(host + "/meshwasm/noop:v1")
	require.NoError(t, err)
	pulled, err := remote.Image(ref)
	require.NoError(t, err)
	got, err = Module(pulled)
	require.NoError(t, err)
	require.Equal(t, code, got)
}
