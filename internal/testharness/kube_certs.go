package testharness

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
)

// kubePKI holds the files kube-apiserver needs, written into a directory.
type kubePKI struct {
	caPEM                []byte // trust anchor for clients
	certFile, keyFile    string // serving certificate for 127.0.0.1
	saPubFile, saKeyFile string // service account token signing key pair
}

// writeKubePKI generates a CA, a serving certificate for 127.0.0.1 and
// localhost signed by it, and an RSA key pair for service account tokens.
func writeKubePKI(dir string) (*kubePKI, error) {
	c, err := newCA("drguard-test-ca")
	if err != nil {
		return nil, err
	}
	srvCert, srvKey, err := c.issue("kube-apiserver", []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"})
	if err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	p := &kubePKI{
		caPEM:     c.pem,
		certFile:  filepath.Join(dir, "apiserver.crt"),
		keyFile:   filepath.Join(dir, "apiserver.key"),
		saPubFile: filepath.Join(dir, "sa.pub"),
		saKeyFile: filepath.Join(dir, "sa.key"),
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		p.certFile:  srvCert,
		p.keyFile:   srvKey,
		p.saPubFile: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
		p.saKeyFile: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}
