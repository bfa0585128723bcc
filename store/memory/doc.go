// Package memory holds the in-process implementations used by the embedded default:
// the widget-data cache (bounded, per-entry TTL). It imports no other dashsync package
// but the seams it implements, and is safe for concurrent use.
package memory
