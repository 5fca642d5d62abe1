// Command kubetune-pki writes the certificates and keys of KubeTune's local control plane into a
// folder: a CA, the API server's serving certificate (for 127.0.0.1, localhost and the in-cluster
// names), client certificates for an administrator (group system:masters) and for
// kube-controller-manager, and the service-account signing key pair. Files that already exist are
// kept, so a restarted control plane keeps its identity. Keys are RSA in PKCS#8 PEM.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

const validity = 10 * 365 * 24 * time.Hour

func main() {
	dir := flag.String("dir", "", "folder to write the PKI into (required)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("--dir is required")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		log.Fatal(err)
	}
	caCert, caKey := loadOrCreateCA(*dir)
	serving := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
	}
	issue(*dir, "apiserver", serving, caCert, caKey)
	issue(*dir, "admin", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kubetune-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, caKey)
	issue(*dir, "controller-manager", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "system:kube-controller-manager"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, caKey)
	saKey := filepath.Join(*dir, "sa.key")
	if !exists(saKey) {
		key := newKey()
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		check(err)
		writePEM(filepath.Join(*dir, "sa.pub"), "PUBLIC KEY", pub, 0o644)
		writeKey(saKey, key)
	}
}

func loadOrCreateCA(dir string) (*x509.Certificate, *rsa.PrivateKey) {
	crtPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if exists(crtPath) && exists(keyPath) {
		cert, err := x509.ParseCertificate(readPEM(crtPath))
		check(err)
		key, err := x509.ParsePKCS8PrivateKey(readPEM(keyPath))
		check(err)
		return cert, key.(*rsa.PrivateKey)
	}
	key := newKey()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kubetune-local-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	check(err)
	writeKey(keyPath, key)
	writePEM(crtPath, "CERTIFICATE", der, 0o644)
	cert, err := x509.ParseCertificate(der)
	check(err)
	return cert, key
}

func issue(dir, name string, tmpl *x509.Certificate, ca *x509.Certificate, caKey *rsa.PrivateKey) {
	crtPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if exists(crtPath) && exists(keyPath) {
		return
	}
	key := newKey()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(validity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	check(err)
	writeKey(keyPath, key)
	writePEM(crtPath, "CERTIFICATE", der, 0o644)
}

func newKey() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	check(err)
	return key
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	check(err)
	return n
}

func writeKey(path string, key *rsa.PrivateKey) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	check(err)
	writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, kind string, der []byte, mode os.FileMode) {
	check(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), mode))
}

func readPEM(path string) []byte {
	data, err := os.ReadFile(path)
	check(err)
	block, _ := pem.Decode(data)
	if block == nil {
		log.Fatalf("%s: no PEM block", path)
	}
	return block.Bytes
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func check(err error) {
	if err != nil {
		log.Fatal(fmt.Errorf("kubetune-pki: %w", err))
	}
}
