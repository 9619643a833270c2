// Package examples holds the tests of the backends under examples/. Each
// backend there is a Go module of its own that depends only on e2e's public
// SDK, as a vendor's backend would; the tests build it from its source
// against this repository's SDK, run the SDK's conformance suite on it,
// install it with `e2e plugin install` and drive a cluster through the
// real e2e command.
package examples
