// Command dashsync is the one binary: `serve` runs the server, `migrate [up|status]`
// applies or lists the database migrations, `token` prints a signed token (SPEC §8).
//
// main reads the command line and the environment (every flag is also a DASHSYNC_*
// variable; the flag wins) and wires the concrete types: the store (SQLite in
// --data-dir, or Postgres with --database-url), the widget-data cache, the domain
// service and the HTTP API. No other package reads configuration. It is the top of
// the import graph: nothing imports it.
//
// run, not main, holds the program (arguments, output writers and getenv are
// parameters) so that tests drive it end to end.
package main
