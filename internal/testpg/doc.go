// Package testpg gives tests a fresh, throwaway Postgres database on the local
// server: NewDatabase creates one per call and drops it when the test ends. It is
// test infrastructure only and imports no other dashsync package.
//
// The server is DASHSYNC_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); only loopback hosts
// and Unix sockets are accepted, so a test can never drop a database elsewhere. When
// the server cannot be reached the test is skipped with a loud message, or fails
// when CI=true.
//
// Concurrency: NewDatabase is safe to call from parallel tests. Whether the server
// answers is checked once per process, with a short timeout.
package testpg
