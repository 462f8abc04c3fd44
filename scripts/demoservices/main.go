// Command demoservices stands in, for `make demo` only, for the two services
// the demo's drills talk to besides PostgreSQL: an S3-compatible object store
// for the backups (gofakes3, in memory: everything is gone when it stops) and
// the team's channel (a webhook receiver that appends each notice it gets to
// a file), and the primary region's health endpoint (/region: GET answers
// 200 while the region is up, 503 once a DELETE has taken it down). It
// listens on free ports of 127.0.0.1 and writes "S3=URL\nWEBHOOK=URL\n
// REGION=URL\n" to the file named by -addr-file once it serves.
// It is not part of drguard and is never built by `make build`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addrFile := flag.String("addr-file", "", "where to write the S3 and webhook URLs (required)")
	notices := flag.String("notices", "", "the file the webhook appends each notice to (required)")
	bucket := flag.String("bucket", "backups", "the bucket to create")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *addrFile == "" || *notices == "" {
		fmt.Fprintln(os.Stderr, "usage: demoservices -addr-file=F -notices=F [-bucket=NAME]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *addrFile, *notices, *bucket); err != nil {
		log.Error("demoservices", "err", err)
		os.Exit(1)
	}
}

// run serves both until ctx ends.
func run(ctx context.Context, log *slog.Logger, addrFile, notices, bucket string) error {
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	s3srv := &http.Server{Handler: gofakes3.New(backend).Server(), ReadHeaderTimeout: 10 * time.Second}
	mux := http.NewServeMux()
	mux.Handle("/notify", &sink{path: notices})
	mux.Handle("/region", &region{})
	hook := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s3l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hookl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addrs := fmt.Sprintf("S3=http://%s\nWEBHOOK=http://%[2]s/notify\nREGION=http://%[2]s/region\n", s3l.Addr(), hookl.Addr())
	if err := os.WriteFile(addrFile, []byte(addrs), 0o600); err != nil {
		return err
	}
	log.Info("serving", "s3", s3l.Addr().String(), "webhook", hookl.Addr().String())
	errs := make(chan error, 2)
	go func() { errs <- s3srv.Serve(s3l) }()
	go func() { errs <- hook.Serve(hookl) }()
	select {
	case <-ctx.Done():
	case err := <-errs:
		return err
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hook.Shutdown(shut)
	return s3srv.Shutdown(shut)
}

// sink appends every request body it receives, one per line, to a file.
type sink struct {
	mu   sync.Mutex
	path string
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s\n", body); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// region is the primary region's health: up until a DELETE takes it down.
type region struct {
	mu   sync.Mutex
	down bool
}

func (g *region) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch r.Method {
	case http.MethodDelete:
		g.down = true
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet, http.MethodHead:
		if g.down {
			http.Error(w, "the primary region is down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "up")
	default:
		http.Error(w, "GET or DELETE", http.StatusMethodNotAllowed)
	}
}
