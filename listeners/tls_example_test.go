package listeners_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/listeners"
)

// TLS termination with two certificates chosen by SNI, a callback for names known only at
// run time, and client certificates required (mutual TLS). The files are watched for
// changes; server.ListeningService.AddTLS serves connections with the settings.
func ExampleNewTLS() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ca, _ := testpki.NewCA("example CA")
	www, _ := ca.Issue(testpki.LeafOptions{Names: []string{"www.example.com"}})
	api, _ := ca.Issue(testpki.LeafOptions{Names: []string{"*.api.example.com"}})
	wwwCert, wwwKey, _ := www.WriteFiles(dir, "www")
	apiCert, apiKey, _ := api.WriteFiles(dir, "api")
	clients := filepath.Join(dir, "clients.pem")
	os.WriteFile(clients, ca.PEM, 0o600)

	settings, err := listeners.NewTLS(listeners.TLSOptions{
		Certs: []listeners.CertFiles{
			{CertFile: wwwCert, KeyFile: wwwKey}, // the default
			{CertFile: apiCert, KeyFile: apiKey},
		},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return nil, nil // nil, nil: use Certs
		},
		ClientCAFile: clients,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(settings.Config().MinVersion == tls.VersionTLS12)
	// Output: true
}
