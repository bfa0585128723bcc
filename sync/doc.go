// Package sync is dashsync's domain: layouts, widgets and dashboards, the ops that
// change them, the edit rule of the contract (overlap → conflict, otherwise rebase),
// validation, and the edit pipeline (check → compare-and-swap commit → publish).
//
// It declares the small interfaces it consumes (Store, Publisher, SourceChecker) and
// imports no other dashsync package. Every exported function is safe for concurrent
// use; Service holds no per-request state, and ordering between concurrent edits of one
// object is decided by the store's compare-and-swap on the version.
package sync
