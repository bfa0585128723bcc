// Package sync is dashsync's domain: layouts, widgets and dashboards, the ops that
// change them, the edit rule of the contract (overlap → conflict, otherwise rebase),
// validation, and the edit pipeline (check → compare-and-swap commit → announce, once
// the commit is durable), with the op log reads that gap fill and resume use
// (ChangesSince).
//
// Layout edits commit in groups (group.go): the edits that queue while a group
// commits go together in the next one, one transaction and one fsync, each under the
// rule on its own. The op log keeps each version's ops, and the whole document only
// at checkpoints (every DefaultCheckpointEvery versions): an old version is its
// checkpoint with at most that many versions' ops replayed (docAt).
//
// It declares the small interfaces it consumes: Store (with its Reader and Tx), which
// it commits to; SourceChecker, which accepts or refuses widget sources; and
// Announcer, which it tells of every commit as a typed Event (LayoutCommitted,
// WidgetChanged, UserEvent), leaving channels and frames to whoever delivers them. It
// imports no other dashsync package. Every exported function is safe for concurrent
// use; Service holds no per-request state, and ordering between concurrent edits of one
// object is decided by the store's compare-and-swap on the version.
package sync
