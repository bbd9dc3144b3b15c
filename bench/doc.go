// Package bench compares pingora-go's hot paths with other Go libraries. It is a separate
// module so that the main module does not depend on the libraries it is measured against.
package bench
