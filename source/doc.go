// Package source holds the widget source kinds of SPEC §2 behind one interface (Kind)
// and a Registry of them by name: static, push, http, demo.counter, demo.series and
// demo.clock. A new kind is added by registering one. The Registry is the server's
// sync.SourceChecker (create and update validation) and, through Fetchers, the
// fetchers of widgetdata.
//
// The http kind enforces the SSRF policy of SPEC §7 (Policy) on the address actually
// dialled, redirects included; its resolver and dialer are injectable so that tests
// never send traffic beyond loopback.
//
// It imports sync (domain types) and widgetdata (the Fetcher it implements) and no
// other dashsync package. Its types are safe for concurrent use once built.
package source
