package testharness

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3Server is an in-process S3 protocol server (gofakes3 with its in-memory
// backend) over plain HTTP, with a settable clock and fault injection.
type S3Server struct {
	// Endpoint is the base URL to give clients (path-style addressing).
	Endpoint string
	// Region, AccessKey and SecretKey are what clients should sign with;
	// the server accepts any credentials.
	Region, AccessKey, SecretKey string

	t     testing.TB
	srv   *httptest.Server
	fake  http.Handler
	clock *s3Clock

	mu        sync.Mutex
	failMatch func(*http.Request) bool
}

// S3 starts an S3 protocol server on a free port. It is stopped in t.Cleanup.
func S3(t testing.TB) *S3Server {
	t.Helper()
	clock := &s3Clock{}
	backend := s3mem.New(s3mem.WithTimeSource(clock))
	fake := gofakes3.New(backend, gofakes3.WithTimeSource(clock), gofakes3.WithTimeSkewLimit(0))
	s := &S3Server{Region: "us-east-1", AccessKey: "drguard-test", SecretKey: "drguard-test-secret",
		t: t, fake: fake.Server(), clock: clock}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.Endpoint = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// NewClient returns an S3 client for this server: path-style, static
// credentials, checksums only when required, and the server's HTTP client
// (set on the S3 options, so AWS_CA_BUNDLE and the like do not apply).
// optFns run last and may change anything, e.g. RetryMaxAttempts.
func (s *S3Server) NewClient(t testing.TB, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	opts := []func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(s.Endpoint)
		o.UsePathStyle = true
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.HTTPClient = s.srv.Client()
	}}
	cfg := aws.Config{
		Region:      s.Region,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	}
	return s3.NewFromConfig(cfg, append(opts, optFns...)...)
}

// CreateBucket creates a bucket or fails the test.
func (s *S3Server) CreateBucket(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.NewClient(s.t).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		s.t.Fatalf("testharness: create bucket %s: %v", name, err)
	}
}

// SetNow fixes the server's clock at now: objects written afterwards get it
// as LastModified (to backdate backups). Advance moves it; UseRealTime undoes it.
func (s *S3Server) SetNow(now time.Time) { s.clock.set(now) }

// Advance moves a fixed clock forward by d (or sets it to real time + d).
func (s *S3Server) Advance(d time.Duration) { s.clock.set(s.clock.Now().Add(d)) }

// UseRealTime makes the server's clock follow real time again.
func (s *S3Server) UseRealTime() { s.clock.set(time.Time{}) }

// FailRequests makes every request for which match returns true fail with a
// 500 InternalError (match nil stops it). Bodies are read first.
func (s *S3Server) FailRequests(match func(*http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failMatch = match
}

// FailUploadParts lets the next n UploadPart requests through and fails every
// later one (retries included) with a 500, so a multipart upload breaks
// mid-way. ClearFailures ends it.
func (s *S3Server) FailUploadParts(n int) {
	var mu sync.Mutex
	seen := 0
	s.FailRequests(func(r *http.Request) bool {
		if !IsUploadPart(r) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		seen++
		return seen > n
	})
}

// ClearFailures stops all fault injection.
func (s *S3Server) ClearFailures() { s.FailRequests(nil) }

// IsUploadPart reports whether r is an S3 UploadPart request.
func IsUploadPart(r *http.Request) bool {
	q := r.URL.Query()
	return r.Method == http.MethodPut && q.Has("partNumber") && q.Has("uploadId") &&
		r.Header.Get("X-Amz-Copy-Source") == ""
}

func (s *S3Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	match := s.failMatch
	s.mu.Unlock()
	if match != nil && match(r) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<Error><Code>InternalError</Code><Message>injected by testharness</Message></Error>`)
		return
	}
	s.fake.ServeHTTP(w, r)
}

// s3Clock is gofakes3's time source: real time unless fixed.
type s3Clock struct {
	mu    sync.Mutex
	fixed time.Time
}

func (c *s3Clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fixed = t
}

// Now returns the fixed time, or the current time when none is set.
func (c *s3Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fixed.IsZero() {
		return time.Now().UTC()
	}
	return c.fixed
}

// Since returns the time elapsed since t by this clock.
func (c *s3Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
