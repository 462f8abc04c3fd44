// Command gen writes the generated files of deploy/base (see package
// deploy). Run it from the repository root: go run ./deploy/gen.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/fruitfulplanet/drguard/deploy"
)

func main() {
	files, err := deploy.Generate(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy/gen:", err)
		os.Exit(1)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := os.WriteFile(filepath.FromSlash(p), files[p], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "deploy/gen:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", p)
	}
}
