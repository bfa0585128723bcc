package sync

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// A link token's secret is base64url, whose alphabet has the '_' that also ends the
// link id, and a layout id may hold '_' too: the token must read back whatever they
// hold.
func TestLinkToken_ReadsBackWhateverTheSecretHolds(t *testing.T) {
	random := make([]byte, linkSecretLen)
	_, _ = rand.Read(random)
	const layout, link = "01a2426d-0110-74de-af12-60eda7466111", "01a2426d-0110-74de-af12-60eda7466896"
	for name, c := range map[string]struct {
		layout, id string
		secret     []byte
	}{
		"secret of underscores":        {layout, link, bytes.Repeat([]byte{0xff}, linkSecretLen)},
		"random secret":                {layout, link, random},
		"layout id with an underscore": {"a_b", link, random},
	} {
		t.Run(name, func(t *testing.T) {
			l, id, hash, ok := parseLinkToken(linkToken(c.layout, c.id, c.secret))
			want := sha256.Sum256(c.secret)
			if !ok || l != c.layout || id != c.id || !bytes.Equal(hash, want[:]) {
				t.Errorf("got %q %q %x %v, want %q %q %x true", l, id, hash, ok, c.layout, c.id, want)
			}
		})
	}
	for _, tok := range []string{"dsl_", "dsl__", "dsl_x", "dsl_" + string(bytes.Repeat([]byte{'_'}, 44)),
		"x_" + linkToken(layout, link, random)[4:], "dsl_" + link + "_" + linkToken(layout, link, random)[len("dsl_"+layout+"_"+link+"_"):],
		"dsl__" + link + "_" + linkToken(layout, link, random)[len("dsl_"+layout+"_"+link+"_"):]} {
		if l, id, _, ok := parseLinkToken(tok); ok {
			t.Errorf("parseLinkToken(%q) = %q %q, true; want not a link token", tok, l, id)
		}
	}
}
