// Command drguard is a disaster-recovery guard for a PostgreSQL-backed
// service on Kubernetes and AWS. See the README and internal/app.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/fruitfulplanet/drguard/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.Stdio())
	stop()
	os.Exit(code)
}
