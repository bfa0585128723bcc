// Command dashsync is the one binary: `serve` runs the server, `migrate [up|status]`
// applies or lists the database migrations, `token` prints a signed token (SPEC §8).
//
// main reads the command line and the environment (every flag is also a DASHSYNC_*
// variable; the flag wins). serve chooses and opens the backends: the token secret
// (--jwt-secret, or with --dev one kept in the data dir), the store (SQLite in
// --data-dir, or Postgres with --database-url), the shared backends (app.Embedded, or
// app.OpenRedis with --redis-url) and the registry of widget source kinds; then
// app.New (internal/app) wires the domain service, the widget data service, the hub
// and the HTTP API on them, and runApp serves the result until the context ends and
// shuts it down. No other package of the server reads flags or the environment. It is
// the top of the import graph: nothing imports it.
//
// run, not main, holds the program (arguments, output writers and getenv are
// parameters) so that tests drive it end to end.
package main
