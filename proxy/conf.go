package proxy

import (
	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/connector"
)

// OptionsFromConf returns proxy options for a server configuration: max_retries, and a
// connector built from its upstream keys (see connector.OptionsFromConf).
func OptionsFromConf(c *conf.ServerConf) (Options, error) {
	co, err := connector.OptionsFromConf(c)
	if err != nil {
		return Options{}, err
	}
	return Options{MaxRetries: c.MaxRetries, Connector: connector.New(co)}, nil
}
