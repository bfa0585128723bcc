// Package storetest is the one conformance suite every dsync.Store implementation
// runs: Run(t, newStore) checks round trips, owner scoping, compare-and-swap, op log
// ranges, idempotent edits, access lists and links (SPEC §10), transactions,
// cancelled contexts, use after Close, and concurrent commits on one base version.
// Each implementation's test file is a few lines that call Run.
//
// It imports only the domain package sync and the standard library. The suite runs
// its cases in parallel and gives each its own store from newStore; every case uses
// fresh owners and ids, so several stores may share one database.
package storetest
