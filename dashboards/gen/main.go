// Command gen writes drguard's Grafana dashboards as JSON into dashboards/.
// Run it from the repository root: go run ./dashboards/gen.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/fruitfulplanet/drguard/dashboards"
)

func main() {
	names := make([]string, 0, len(dashboards.Files))
	for n := range dashboards.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d, err := dashboards.Files[n]()
		var b []byte
		if err == nil {
			b, err = dashboards.JSON(d)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "dashboards/gen:", err)
			os.Exit(1)
		}
		path := filepath.Join("dashboards", n)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "dashboards/gen:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", path)
	}
}
