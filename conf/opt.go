package conf

import (
	"github.com/spf13/pflag"
)

// Opt holds the reference's command-line options.
type Opt struct {
	// Upgrade takes the listening sockets over from a running instance through upgrade_sock
	// instead of binding them (-u, --upgrade).
	Upgrade bool
	// Daemon runs the server in the background (-d, --daemon); it ORs with the file's daemon.
	Daemon bool
	// Test validates the configuration and exits (-t, --test), like nginx -t.
	Test bool
	// Conf is the path of the YAML configuration (-c, --conf); "" uses the defaults.
	Conf string
	// Help asks for the usage text (-h, --help).
	Help bool
}

// AddFlags defines the options' flags on fs, so that a program can add its own flags beside
// them. --nocapture is accepted and ignored, as in the reference.
func (o *Opt) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVarP(&o.Upgrade, "upgrade", "u", false, "take the listening sockets over from a running instance via upgrade_sock")
	fs.BoolVarP(&o.Daemon, "daemon", "d", false, "run in the background")
	fs.BoolVarP(&o.Test, "test", "t", false, "test the configuration and exit")
	fs.StringVarP(&o.Conf, "conf", "c", "", "path to the YAML configuration file")
	fs.BoolVarP(&o.Help, "help", "h", false, "print this help and exit")
	fs.Bool("nocapture", false, "ignored")
	fs.Lookup("nocapture").Hidden = true
}

// ParseArgs parses args (without the program name) into an Opt.
func ParseArgs(args []string) (Opt, error) {
	var o Opt
	fs := pflag.NewFlagSet("pingora", pflag.ContinueOnError)
	o.AddFlags(fs)
	err := fs.Parse(args)
	return o, err
}

// Load returns the configuration the options name: the file given with -c, or the defaults;
// -d turns daemon on.
func (o Opt) Load() (*ServerConf, error) {
	c := Default()
	if o.Conf != "" {
		var err error
		if c, err = Load(o.Conf); err != nil {
			return nil, err
		}
	}
	if o.Daemon {
		c.Daemon = true
	}
	return c, nil
}
