package e2e

import (
	"testing"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestMain stops the shared kube-apiserver when the tests end.
func TestMain(m *testing.M) { testharness.Main(m) }
