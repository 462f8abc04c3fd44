package testharness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Kube is a real kube-apiserver backed by its own etcd. There is no
// controller-manager: pods never run, deleted namespaces stay Terminating,
// and ServiceAccounts are made by NewNamespace and TokenFor.
type Kube struct {
	// URL is the API server's https URL.
	URL string
	// CAData is the PEM CA that signed the serving certificate.
	CAData []byte
	// AdminToken authenticates as user "admin" in group system:masters.
	AdminToken string
	// Dir holds certificates, etcd data and logs.
	Dir string
	// APIServerLog and EtcdLog are the components' log files.
	APIServerLog, EtcdLog string

	etcd, apiserver *process
}

// sharedKube is the one kube-apiserver of a test binary: it costs ~3 s and
// ~300 MB, so every test in the binary shares it and isolates itself with
// NewNamespace. It is the package's only global state; Main stops it.
var sharedKube struct {
	once sync.Once
	kube *Kube
	need string // what to install, when a binary is missing
	err  error
}

// KubeAPIServer returns the test binary's shared kube-apiserver, starting it
// (with etcd) on first use. A test package using it should call Main from its
// TestMain so that it is stopped and its directory removed at exit; otherwise
// the kernel kills it when the test binary exits (Pdeathsig) and the next
// start removes the stale directory.
func KubeAPIServer(t testing.TB) *Kube {
	t.Helper()
	sharedKube.once.Do(func() {
		sharedKube.kube, sharedKube.need, sharedKube.err = startKube()
	})
	if sharedKube.need != "" {
		Need(t, sharedKube.need, sharedKube.err)
	}
	if sharedKube.err != nil {
		t.Fatalf("testharness: kube-apiserver: %v", sharedKube.err)
	}
	k := sharedKube.kube
	dumpLogOnFailure(t, "kube-apiserver", k.APIServerLog)
	return k
}

// Main runs the tests of a package and then stops the shared kube-apiserver
// and browser. Call it from TestMain: func TestMain(m *testing.M) {
// testharness.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if k := sharedKube.kube; k != nil {
		k.stop()
	}
	stopShared()
	os.Exit(code)
}

// AdminConfig returns a client configuration with cluster-admin rights.
func (k *Kube) AdminConfig() *rest.Config { return k.ConfigFor(k.AdminToken) }

// ConfigFor returns a client configuration that authenticates with token.
func (k *Kube) ConfigFor(token string) *rest.Config {
	return &rest.Config{
		Host:            k.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: k.CAData},
		QPS:             100,
		Burst:           200,
		Timeout:         30 * time.Second,
	}
}

// AdminClient returns a clientset with cluster-admin rights.
func (k *Kube) AdminClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatalf("testharness: kube client: %v", err)
	}
	return c
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a fresh namespace named after the test, with the
// "default" ServiceAccount a controller-manager would have made, and
// deletes it in t.Cleanup (it then stays Terminating: no controller).
func (k *Kube) NewNamespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "t-" + base + "-" + hex.EncodeToString(b)
	c := k.AdminClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("testharness: create namespace %s: %v", name, err)
	}
	if err := ensureServiceAccount(ctx, c, name, "default"); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

// TokenFor creates the ServiceAccount if needed and returns a one-hour token
// for it (TokenRequest), to act as that ServiceAccount via ConfigFor.
func (k *Kube) TokenFor(t testing.TB, namespace, serviceAccount string) string {
	t.Helper()
	c := k.AdminClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ensureServiceAccount(ctx, c, namespace, serviceAccount); err != nil {
		t.Fatalf("testharness: %v", err)
	}
	ttl := int64(3600)
	tr, err := c.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testharness: token for %s/%s: %v", namespace, serviceAccount, err)
	}
	return tr.Status.Token
}

func ensureServiceAccount(ctx context.Context, c kubernetes.Interface, namespace, name string) error {
	_, err := c.CoreV1().ServiceAccounts(namespace).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create serviceaccount %s/%s: %w", namespace, name, err)
	}
	return nil
}

// findKubeAPIServer returns $DRGUARD_KUBE_APISERVER, the binary built by
// scripts/kube-apiserver.sh, or kube-apiserver on PATH.
func findKubeAPIServer() (string, error) {
	if p := os.Getenv("DRGUARD_KUBE_APISERVER"); p != "" {
		return findBinary(p)
	}
	return findBinary(filepath.Join(cacheDir(), "bin", "kube-apiserver"), "kube-apiserver")
}

// startKube starts etcd and kube-apiserver. On failure it returns what to
// install when a binary is missing, and the error.
func startKube() (*Kube, string, error) {
	apiBin, err := findKubeAPIServer()
	if err != nil {
		return nil, "kube-apiserver (scripts/kube-apiserver.sh)", err
	}
	etcdBin, err := findBinary(os.Getenv("DRGUARD_ETCD"), "etcd", "/usr/bin/etcd")
	if err != nil {
		return nil, "etcd (apt-get install etcd-server)", err
	}
	removeStaleTempDirs("dgkube-")
	dir, err := os.MkdirTemp("/tmp", fmt.Sprintf("dgkube-%d-", os.Getpid()))
	if err != nil {
		return nil, "", err
	}
	k := &Kube{Dir: dir, APIServerLog: filepath.Join(dir, "apiserver.log"), EtcdLog: filepath.Join(dir, "etcd.log")}
	if err := k.start(apiBin, etcdBin); err != nil {
		err = fmt.Errorf("%w\n--- etcd log:\n%s\n--- kube-apiserver log:\n%s", err, logTail(k.EtcdLog, 15), logTail(k.APIServerLog, 30))
		k.stop()
		return nil, "", err
	}
	return k, "", nil
}

func (k *Kube) start(apiBin, etcdBin string) error {
	ports := make([]int, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	var err error
	k.etcd, err = startProcess(procSpec{name: "etcd", bin: etcdBin, dir: k.Dir, logPath: k.EtcdLog, args: []string{
		"--name=default", "--data-dir=" + filepath.Join(k.Dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL, "--logger=zap", "--log-level=warn",
	}})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := waitReady(ctx, k.etcd, httpReady(etcdURL+"/health")); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	pki, err := writeKubePKI(k.Dir)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	k.CAData = pki.caPEM
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	k.AdminToken = hex.EncodeToString(tok)
	tokens := filepath.Join(k.Dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(k.AdminToken+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	k.URL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	k.apiserver, err = startProcess(procSpec{name: "kube-apiserver", bin: apiBin, dir: k.Dir, logPath: k.APIServerLog, args: []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--tls-cert-file=" + pki.certFile, "--tls-private-key-file=" + pki.keyFile,
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPubFile,
		"--service-account-signing-key-file=" + pki.saKeyFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(k.Dir, "certs"),
		"--v=1",
	}})
	if err != nil {
		return err
	}
	client, err := rest.HTTPClientFor(k.AdminConfig())
	if err != nil {
		return err
	}
	return waitReady(ctx, k.apiserver, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.URL+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New("readyz: " + resp.Status)
		}
		return nil
	})
}

// stop ends kube-apiserver, then etcd, and removes the directory.
func (k *Kube) stop() {
	for _, p := range []*process{k.apiserver, k.etcd} {
		if p != nil {
			p.stop(syscall.SIGTERM, 10*time.Second)
		}
	}
	_ = os.RemoveAll(k.Dir)
}
