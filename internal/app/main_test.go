package app

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// daemonEnv makes the test binary act as the drguard command, so tests can
// run (and kill -9) a real drguard process without building another binary.
const daemonEnv = "DRGUARD_TEST_RUN_AS_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, os.Args[1:], Stdio())
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
