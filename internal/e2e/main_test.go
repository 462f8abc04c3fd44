package e2e

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/fruitfulplanet/drguard/internal/app"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// asDrguard makes the test binary act as the drguard command (value "1"),
// so that a policy's exec step can run `drguard restore` as an operator's
// restore script would, without another build.
const asDrguard = "DRGUARD_TEST_RUN_AS_DAEMON"

// TestMain runs the test binary as drguard when asked to, and otherwise
// the tests, stopping the shared kube-apiserver when they end.
func TestMain(m *testing.M) {
	if os.Getenv(asDrguard) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := app.Main(ctx, os.Args[1:], app.Stdio())
		stop()
		os.Exit(code)
	}
	testharness.Main(m)
}
