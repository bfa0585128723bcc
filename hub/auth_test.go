package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/wire"
)

// mintAt signs a token for user issued at now, and returns it with the expiry the
// server reads from it (JWT exp has second granularity).
func mintAt(t testing.TB, user string, now time.Time, ttl time.Duration) (string, time.Time) {
	t.Helper()
	tok, err := api.MintTokenAt(testenv.Secret, user, now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	_, exp, err := api.VerifyToken(testenv.Secret, tok, now)
	if err != nil {
		t.Fatalf("the minted token does not verify: %v", err)
	}
	return tok, exp
}

// dialToken opens a WebSocket with token, closed at cleanup.
func dialToken(t testing.TB, s *testenv.Server, token string) *wsclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := wsclient.Dial(ctx, s.WSURL, wsclient.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseNow)
	return c
}

// refreshWithin is how long the refreshing connection's first token lives (JWT exp has
// second granularity: more than refreshWithin-1s). Before it passes the test must
// dial two connections and have one `auth` answered, milliseconds of work: a stated,
// generous bound, and a machine slower than that fails saying so.
const refreshWithin = 5 * time.Second

// TestTokenExpiry_Closes4001: a connection whose token expires without an `auth`
// refresh is closed with 4001 within 5 s of exp (not before); one that refreshes in
// time gets `authed` with the new exp and stays open past the old one (SPEC §5, §9).
func TestTokenExpiry_Closes4001(t *testing.T) {
	t.Parallel()
	s := testenv.New(t, testenv.Options{})
	now := time.Now()
	// The refreshing connection's first token expires a second before the other's:
	// had the refresh been ignored, it would be closed well before the other is.
	refreshTok, refreshExp := mintAt(t, "alice", now, refreshWithin)
	expiringTok, exp := mintAt(t, "alice", now, refreshWithin+time.Second)
	if !refreshExp.Before(exp) {
		t.Fatalf("token expiries %v and %v: want the first one earlier", refreshExp, exp)
	}

	expiring := dialToken(t, s, expiringTok)
	refreshed := dialToken(t, s, refreshTok)
	freshTok, freshExp := mintAt(t, "alice", time.Now(), time.Hour)
	r := req(t, refreshed, map[string]any{"type": "auth", "token": freshTok})
	if r.Type != "authed" {
		t.Fatalf("auth with a fresh token: got %s, want authed", r.Raw)
	}
	// Answered after the old exp, the refresh may have crossed the expiry's close:
	// nothing this test checks next would then tell a correct hub from a broken one.
	if answered := time.Now(); answered.After(refreshExp) {
		t.Fatalf("the refresh was answered %v after minting, past the old token's exp (the stated bound of %v): the machine stalled",
			answered.Sub(now).Round(time.Millisecond), refreshWithin)
	}
	gotExp, err := time.Parse(time.RFC3339, r.Exp)
	if err != nil {
		t.Fatalf("authed.exp %q is not RFC 3339: %v", r.Exp, err)
	}
	if !gotExp.Equal(freshExp) {
		t.Fatalf("authed.exp: got %v, want the new token's exp %v", gotExp, freshExp)
	}

	// SPEC §9's own bound: closed within 5 s of exp.
	select {
	case <-expiring.Done():
	case <-time.After(time.Until(exp.Add(5 * time.Second))):
		t.Fatalf("the connection with the expired token was not closed within 5 s of exp (%v)", exp)
	}
	closedAt := time.Now()
	if closedAt.Before(exp) {
		t.Fatalf("the connection was closed at %v, before its token's exp %v", closedAt, exp)
	}
	if got := expiring.CloseStatus(); got != wire.CloseTokenExpired {
		t.Fatalf("close status: got %v (%v), want 4001", got, expiring.Err())
	}

	// Past both old expiries, the refreshed connection is open and answers.
	select {
	case <-refreshed.Done():
		t.Fatalf("the refreshed connection was closed (status %v) at its old token's exp", refreshed.CloseStatus())
	default:
	}
	if r := req(t, refreshed, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("ping on the refreshed connection: got %s", r.Raw)
	}
}
