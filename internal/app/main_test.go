package app

import (
	"context"
	"io"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/fruitfulplanet/drguard/detect/alertmanager"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// daemonEnv makes the test binary act as the drguard command (value "1"),
// or as the no-persistence webhook handler the intake benchmark compares
// against (value "nopersist", listening on the address in argv[1]), so
// that tests and benchmarks run real processes without another build.
const daemonEnv = "DRGUARD_TEST_RUN_AS_DAEMON"

func TestMain(m *testing.M) {
	if addr := os.Getenv("DRGUARD_TEST_PPROF_ADDR"); addr != "" && os.Getenv(daemonEnv) != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	switch os.Getenv(daemonEnv) {
	case "1":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, os.Args[1:], Stdio())
		stop()
		os.Exit(code)
	case "nopersist":
		os.Exit(serveNoPersist(os.Args[1]))
	}
	testharness.Main(m) // the shared kube-apiserver and browser stop after the tests
}

// serveNoPersist answers webhooks the way intake does minus the journal:
// authenticate, decode, 200. It runs with the daemon's GOMAXPROCS floor,
// so that both sides of the benchmark have the same Ps.
func serveNoPersist(addr string) int {
	EnsureMinProcs()
	auth := server.NewAuthenticator(config.Auth{Webhook: config.WebhookAuth{BearerToken: webhookToken}})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		if !auth.Webhook(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if _, _, err := alertmanager.Decode(http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, `{"status":"success"}`+"\n")
	})
	if err := http.ListenAndServe(addr, h); err != nil {
		return 1
	}
	return 0
}
