package connector

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/internal/testpki"
)

func TestOptionsFromConf(t *testing.T) {
	ca, err := testpki.NewCA("conf CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{"x.test"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := leaf.WriteFiles(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("nothing"), 0o644)

	good := &conf.ServerConf{UpstreamKeepalivePoolSize: 7, ClientBindToIPv4: []string{"127.0.0.2"},
		ClientBindToIPv6: []string{"::1"}, CAFile: caFile}
	o, err := OptionsFromConf(good)
	if err != nil {
		t.Fatal(err)
	}
	if o.PoolSize != 7 || len(o.BindToV4) != 1 || o.BindToV4[0].String() != "127.0.0.2" ||
		len(o.BindToV6) != 1 || o.RootCAs == nil {
		t.Fatalf("options %+v", o)
	}
	for name, c := range map[string]*conf.ServerConf{
		"v6 in v4 list":  {ClientBindToIPv4: []string{"::1"}},
		"not an address": {ClientBindToIPv6: []string{"nope"}},
		"missing ca":     {CAFile: filepath.Join(dir, "missing.pem")},
		"no pem in ca":   {CAFile: empty},
	} {
		if _, err := OptionsFromConf(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
