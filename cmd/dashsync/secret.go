package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// devSecretFile is the name of the secret --dev keeps in the data dir.
const devSecretFile = "jwt-secret"

// minDevSecretLen is the length of a kept secret: 32 random bytes, hex-encoded.
const minDevSecretLen = 64

// errNoSecret is the refusal to run without a secret outside --dev.
var errNoSecret = errors.New("no JWT secret: set --jwt-secret or DASHSYNC_JWT_SECRET (or run with --dev, which generates one)")

// jwtSecret returns the secret to sign and verify tokens with: the configured one;
// else, with dev, the one kept in dataDir (generated there on first use). The data
// dir is made 0700 and the kept secret 0600, also when they exist already.
// generated reports whether it was just created.
func jwtSecret(configured string, dev bool, dataDir string) (secret []byte, generated bool, err error) {
	if configured != "" {
		return []byte(configured), false, nil
	}
	if !dev {
		return nil, false, errNoSecret
	}
	if err := ensureDataDir(dataDir); err != nil {
		return nil, false, err
	}
	path := filepath.Join(dataDir, devSecretFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, false, fmt.Errorf("make the kept secret private: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if len(s) < minDevSecretLen {
			return nil, false, fmt.Errorf("the kept secret %s is too short (%d characters); delete it to generate a new one", path, len(s))
		}
		return []byte(s), false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("read the kept secret: %w", err)
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	s := hex.EncodeToString(raw[:])
	// Written aside, then linked into place: a concurrent reader never sees a partial
	// file, and when two processes race, one link wins and the other reads its secret.
	tmp, err := os.CreateTemp(dataDir, devSecretFile+".*")
	if err != nil {
		return nil, false, fmt.Errorf("keep the secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("keep the secret: %w", err)
	}
	if _, err := tmp.WriteString(s + "\n"); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("keep the secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("keep the secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return jwtSecret("", true, dataDir)
		}
		return nil, false, fmt.Errorf("keep the secret: %w", err)
	}
	return []byte(s), true, nil
}
