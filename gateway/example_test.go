package gateway_test

import (
	"fmt"

	"github.com/pingora-go/pingora/gateway"
)

// A configuration is checked as a whole: every problem is reported with its line.
func ExampleParse() {
	_, err := gateway.Parse([]byte(`
listeners:
  - address: 127.0.0.1:8080
services:
  web:
    routes:
      - match: {path_regex: "^/v[0-9+/"}
        upstream: api
`), "config.yaml")
	fmt.Println(err)
	// Output:
	// config.yaml:7: services.web.routes[0].match.path_regex: error parsing regexp: missing closing ]: `[0-9+/`
	// config.yaml:8: services.web.routes[0].upstream: no upstream named "api"
}

// Defaults are filled in when the file is read; YAML shows the effective configuration.
func ExampleConfig_YAML() {
	c, err := gateway.Parse([]byte(`
listeners: [{address: 127.0.0.1:8080}]
upstreams:
  api: {backends: [127.0.0.1:9000]}
services:
  web: {routes: [{upstream: api}]}
`), "")
	if err != nil {
		panic(err)
	}
	u := c.Upstreams["api"]
	fmt.Println(c.Listeners[0].Service, u.Algorithm, u.ConnectTimeout.D(), *u.Retries)
	// Output: web round_robin 5s 2
}
