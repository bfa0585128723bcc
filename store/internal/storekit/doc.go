// Package storekit holds what the SQL stores (store/postgres, store/sqlite) share and
// nothing else: the JSON encoding of the document columns, which must round-trip byte
// for byte, and the domain errors the stores return.
//
// It imports only the domain package sync. Every function is pure and safe for
// concurrent use.
package storekit
