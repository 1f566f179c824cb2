package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	out := flag.String("layout", "build/images", "OCI layout directory to write")
	registry := flag.String("registry", os.Getenv("REGISTRY"), "push to this registry/repository prefix, e.g. ghcr.io/acme/meshwasm (optional)")
	tag := flag.String("tag", "latest", "image tag")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: wasm-image [flags] build/authz.wasm [more.wasm ...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *registry, *tag, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "wasm-image: %v\n", err)
		os.Exit(1)
	}
}

func run(out, registry, tag string, modules []string) error {
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	lp, err := layout.Write(out, empty.Index)
	if err != nil {
		return fmt.Errorf("layout %s: %w", out, err)
	}
	for _, path := range modules {
		code, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		img, err := Build(code)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		module := strings.TrimSuffix(filepath.Base(path), ".wasm")
		ref := module + ":" + tag
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": ref,
		})); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("%s\t%s\t%s\n", out, ref, digest)
		if registry != "" {
			if err := push(img, registry+"/"+ref); err != nil {
				return err
			}
		}
	}
	return nil
}

func push(img v1.Image, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("reference %q: %w", ref, err)
	}
	if err := remote.Write(r, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	fmt.Printf("pushed\t%s\n", r)
	return nil
}
