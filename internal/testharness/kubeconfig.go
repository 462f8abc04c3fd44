package testharness

import (
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeContext is one context of a kubeconfig: a cluster and a token.
type KubeContext struct {
	Kube  *Kube
	Token string
}

// WriteKubeconfig writes a kubeconfig into t's temporary directory with one
// context (cluster and user of the same name) per entry of contexts;
// current is its current context. It returns the file's path.
func WriteKubeconfig(t testing.TB, current string, contexts map[string]KubeContext) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	for name, c := range contexts {
		kc.Clusters[name] = &clientcmdapi.Cluster{Server: c.Kube.URL, CertificateAuthorityData: c.Kube.CAData}
		kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: c.Token}
		kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	kc.CurrentContext = current
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("testharness: write kubeconfig: %v", err)
	}
	return path
}

// StartKubeAPIServer starts a kube-apiserver (with its own etcd) for t
// alone, beside the test binary's shared one (KubeAPIServer): for tests
// that need two clusters, such as a kubeconfig whose contexts point at
// different clusters. It costs ~3 s and ~300 MB; it is stopped in
// t.Cleanup.
func StartKubeAPIServer(t testing.TB) *Kube {
	t.Helper()
	k, need, err := startKube()
	if need != "" {
		Need(t, need, err)
	}
	if err != nil {
		t.Fatalf("testharness: kube-apiserver: %v", err)
	}
	t.Cleanup(k.stop)
	dumpLogOnFailure(t, "second kube-apiserver", k.APIServerLog)
	return k
}
