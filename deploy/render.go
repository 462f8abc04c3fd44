package deploy

import (
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// BasePath is the kustomize base, relative to the repository root, and
// HAOverlayPath the overlay for high availability.
const (
	BasePath      = "deploy/base"
	HAOverlayPath = "deploy/overlays/ha"
)

// Render builds the kustomize base under root the way
// `kubectl kustomize deploy/base` does (default options, files restricted
// to the base's directory) and returns the multi-document YAML.
func Render(root string) ([]byte, error) { return RenderPath(root, BasePath) }

// RenderPath builds the kustomization at path (relative to root), as
// Render does the base.
func RenderPath(root, path string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, path))
	if err != nil {
		return nil, err
	}
	return m.AsYaml()
}
