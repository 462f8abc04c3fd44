package probe

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/kubeclient"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"k8s.io/client-go/kubernetes"
)

// Env is what every probe runs with: a logger, the configuration (whose
// targets probes are compiled against), the probe metrics, a clock, and clients shared between probes
// and cached per target (a pgx pool per PostgreSQL target, an S3 client per
// bucket target, a Kubernetes client per cluster, one HTTP client). Clients
// are created lazily on first use and closed by Close. Env is passed by
// value; copies share the same clients.
type Env struct {
	// Logger receives probe diagnostics. Never log a secret through it.
	Logger *slog.Logger
	// Config supplies the targets probes name, when they are compiled.
	Config *config.Config
	// Metrics receives the gauges probes set (replication lag, Redis
	// persistence, backup age); nil disables them.
	Metrics *metrics.Probes
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	shared *shared
}

// EnvOptions configures NewEnv.
type EnvOptions struct {
	Logger  *slog.Logger
	Config  *config.Config
	Metrics *metrics.Probes
	Now     func() time.Time
	// HTTPClient is used by http probes; nil means a client with its own
	// transport (keep-alives on, no proxy from the environment).
	HTTPClient *http.Client
	// Kube is the Kubernetes client factory, shared with the actions; nil
	// means one of the environment's own.
	Kube *kubeclient.Cache
}

// shared holds the clients probes share, guarded by mu.
type shared struct {
	mu     sync.Mutex
	closed bool
	http   *http.Client
	// httpNoRedirect is http that reports a redirect's own status.
	httpNoRedirect *http.Client
	pg             map[string]*pgxpool.Pool
	s3             map[string]*s3.Client
	redis          map[string]*redis.Client
	kube           *kubeclient.Cache
	lsn            map[string]*lsnHistory
}

// NewEnv returns an Env with an empty client cache.
func NewEnv(o EnvOptions) Env {
	e := Env{Logger: o.Logger, Config: o.Config, Metrics: o.Metrics, Now: o.Now}
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: newTransport()}
	}
	if o.Kube == nil {
		o.Kube = kubeclient.NewCache("drguard-probe")
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.shared = &shared{
		http:           hc,
		httpNoRedirect: &noRedirect,
		pg:             map[string]*pgxpool.Pool{},
		s3:             map[string]*s3.Client{},
		redis:          map[string]*redis.Client{},
		kube:           o.Kube,
		lsn:            map[string]*lsnHistory{},
	}
	return e
}

// newTransport returns an HTTP transport whose own timeouts are generous
// backstops: every request also carries the probe's deadline.
func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          200,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// errClosed is returned by client getters after Close.
var errClosed = errors.New("probe environment is closed")

// Close closes every cached client. Probes that run afterwards fail.
func (e Env) Close() {
	if e.shared == nil {
		return
	}
	s := e.shared
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	pools, rcs := s.pg, s.redis
	s.pg, s.redis = nil, nil
	s.mu.Unlock()
	for _, c := range rcs {
		_ = c.Close()
	}
	// pgxpool.Close waits for acquired connections, which probes hold at
	// most until their deadline: close outside the lock.
	for _, p := range pools {
		p.Close()
	}
	s.http.CloseIdleConnections()
}

// now returns the time by e's clock.
func (e Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// sharedOrNew returns the client cache, which an Env built without NewEnv
// lacks: such an Env gets a private cache per call, so it works but does
// not pool (use NewEnv).
func (e Env) sharedOrNew() *shared {
	if e.shared != nil {
		return e.shared
	}
	return NewEnv(EnvOptions{}).shared
}

// httpClient returns the shared HTTP client.
func (e Env) httpClient() *http.Client { return e.sharedOrNew().http }

// httpClientNoRedirects returns the shared HTTP client that does not
// follow redirects.
func (e Env) httpClientNoRedirects() *http.Client { return e.sharedOrNew().httpNoRedirect }

// kubeClient returns the cached client of t, from the shared Kubernetes
// client factory (kubeconfig and context, or in-cluster).
func (e Env) kubeClient(t config.KubernetesTarget) (kubernetes.Interface, error) {
	s := e.sharedOrNew()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	return s.kube.Client(t)
}

// cached returns the value cached under key in m, creating it with mk on a
// miss. mk runs under the cache lock; it must not do network I/O.
func cached[V any](e Env, m func(*shared) map[string]V, key string, mk func() (V, error)) (V, error) {
	s := e.sharedOrNew()
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero V
	if s.closed {
		return zero, errClosed
	}
	if v, ok := m(s)[key]; ok {
		return v, nil
	}
	v, err := mk()
	if err != nil {
		return zero, err
	}
	m(s)[key] = v
	return v, nil
}

// cleanupTimeout bounds clean-up calls (rollback, close) made after the
// probe's own deadline may have passed.
const cleanupTimeout = 5 * time.Second

// cleanupContext returns a context for clean-up: not cancelled with ctx,
// but bounded by cleanupTimeout.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
