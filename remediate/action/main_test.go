package action

import (
	"testing"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestMain stops the shared kube-apiserver the Kubernetes tests start.
func TestMain(m *testing.M) { testharness.Main(m) }
