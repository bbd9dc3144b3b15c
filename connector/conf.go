package connector

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"

	"github.com/pingora-go/pingora/conf"
)

// OptionsFromConf returns the connector options a server configuration asks for (the
// reference's ConnectorOptions::from_server_conf): upstream_keepalive_pool_size,
// client_bind_to_ipv4/ipv6 and ca_file. upstream_debug_ssl_keylog needs a writer for the
// key log, which the caller opens (it is a file to reopen with the logs); set KeyLogWriter.
func OptionsFromConf(c *conf.ServerConf) (Options, error) {
	o := Options{PoolSize: c.UpstreamKeepalivePoolSize}
	for _, s := range c.ClientBindToIPv4 {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return o, fmt.Errorf("client_bind_to_ipv4: %q is not an IPv4 address", s)
		}
		o.BindToV4 = append(o.BindToV4, a)
	}
	for _, s := range c.ClientBindToIPv6 {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return o, fmt.Errorf("client_bind_to_ipv6: %q is not an IPv6 address", s)
		}
		o.BindToV6 = append(o.BindToV6, a)
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return o, fmt.Errorf("ca_file: %w", err)
		}
		o.RootCAs = x509.NewCertPool()
		if !o.RootCAs.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("ca_file %s holds no PEM certificate", c.CAFile)
		}
	}
	return o, nil
}
