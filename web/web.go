// Package web holds dashsync's browser side, embedded in the binary: dashsync.js (the
// dependency-free ES module client of the WebSocket protocol, usable by any dashboard
// front end) and the demo dashboard served at / (index.html, app.js, style.css,
// icon.svg). There is no build step: the files are served as they are in this folder.
//
// It imports nothing of dashsync; api serves what FS returns (cmd/dashsync passes it to
// app.New, which hands it to api.Config.Web). The files' unit tests run with node
// (`make test-js`: node --test web/test/*.test.mjs).
package web

import (
	"embed"
	"io/fs"
)

//go:embed index.html app.js dashsync.js style.css icon.svg
var files embed.FS

// FS returns the static files: index.html (the page at /) and the assets it loads from
// /web/. It is read-only and safe for concurrent use.
func FS() fs.FS { return files }
