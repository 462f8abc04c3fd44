package app

import "runtime/debug"

// Version is drguard's version, set at build time with
// -ldflags "-X github.com/fruitfulplanet/drguard/internal/app.Version=v1.2.3".
var Version = "dev"

// Revision returns the VCS revision the binary was built from, if known.
func Revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
