package sync

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// A link token's secret is base64url, whose alphabet has the '_' that also ends the
// link id: the token must read back whatever the secret holds.
func TestLinkToken_ReadsBackWhateverTheSecretHolds(t *testing.T) {
	random := make([]byte, linkSecretLen)
	_, _ = rand.Read(random)
	for name, c := range map[string]struct {
		id     string
		secret []byte
	}{
		"secret of underscores": {"01a2426d-0110-74de-af12-60eda7466896", bytes.Repeat([]byte{0xff}, linkSecretLen)},
		"random secret":         {"01a2426d-0110-74de-af12-60eda7466896", random},
		"id with an underscore": {"a_b", random},
	} {
		t.Run(name, func(t *testing.T) {
			id, hash, ok := parseLinkToken(linkToken(c.id, c.secret))
			want := sha256.Sum256(c.secret)
			if !ok || id != c.id || !bytes.Equal(hash, want[:]) {
				t.Errorf("got %q %x %v, want %q %x true", id, hash, ok, c.id, want)
			}
		})
	}
	for _, tok := range []string{"dsl_", "dsl__", "dsl_x", "dsl_" + string(bytes.Repeat([]byte{'_'}, 44)), "x_" + linkToken("a", random)[4:]} {
		if id, _, ok := parseLinkToken(tok); ok {
			t.Errorf("parseLinkToken(%q) = %q, true; want not a link token", tok, id)
		}
	}
}
