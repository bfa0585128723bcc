// Package sync is dashsync's domain: layouts, widgets and dashboards, the ops that
// change them, the edit rule of the contract (overlap → conflict, otherwise rebase),
// validation, and the edit pipeline (check → compare-and-swap commit → announce, once
// the commit is durable), with the op log reads that gap fill and resume use
// (ChangesSince).
//
// It declares the small interfaces it consumes: Store (with its Reader and Tx), which
// it commits to; SourceChecker, which accepts or refuses widget sources; and
// Announcer, which it tells of every commit as a typed Event (LayoutCommitted,
// WidgetChanged, UserEvent), leaving channels and frames to whoever delivers them. It
// imports no other dashsync package. Every exported function is safe for concurrent
// use; Service holds no per-request state, and ordering between concurrent edits of one
// object is decided by the store's compare-and-swap on the version.
package sync
