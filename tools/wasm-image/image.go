// Command wasm-image packages meshwasm modules as OCI images that Istio's
// WasmPlugin pulls (`url: oci://...`), without a Docker engine.
//
// The image uses Istio's "compat" variant: one gzip tar layer holding
// plugin.wasm, and the manifest annotation module.wasm.image/variant=compat.
// Images are written as an OCI layout (one directory, every module tagged by
// name) and pushed to $REGISTRY when it is set.
// See https://github.com/solo-io/wasm/blob/master/spec/spec-compat.md.
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ModuleFile is the file name Istio looks for in a compat image's layer.
const ModuleFile = "plugin.wasm"

// VariantAnnotation marks the compat layout for Istio's image fetcher.
const VariantAnnotation = "module.wasm.image/variant"

// epoch keeps image digests reproducible: the same module gives the same
// digest on every build.
var epoch = time.Unix(0, 0).UTC()

// Build packages one module.
func Build(module []byte) (v1.Image, error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	if err := tw.WriteHeader(&tar.Header{
		Name:    ModuleFile,
		Mode:    0o444,
		Size:    int64(len(module)),
		ModTime: epoch,
		Format:  tar.FormatPAX,
	}); err != nil {
		return nil, fmt.Errorf("tar header: %w", err)
	}
	if _, err := tw.Write(module); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	layerBytes := tarBuf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.CreatedAt(img, v1.Time{Time: epoch})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "wasip1", "wasm"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return mutate.Annotations(img, map[string]string{VariantAnnotation: "compat"}).(v1.Image), nil
}

// Module reads the module back out of a compat image: what Istio's fetcher
// does.
func Module(img v1.Image) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != 1 {
		return nil, fmt.Errorf("compat image: want 1 layer, have %d", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("compat image: no %s in layer", ModuleFile)
		}
		if err != nil {
			return nil, err
		}
		if h.Name == ModuleFile {
			return io.ReadAll(tr)
		}
	}
}
