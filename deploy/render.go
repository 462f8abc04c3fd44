package deploy

import (
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// BasePath is the kustomize base, relative to the repository root.
const BasePath = "deploy/base"

// Render builds the kustomize base under root the way
// `kubectl kustomize deploy/base` does (default options, files restricted
// to the base's directory) and returns the multi-document YAML.
func Render(root string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, BasePath))
	if err != nil {
		return nil, err
	}
	return m.AsYaml()
}
