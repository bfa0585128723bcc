package hub_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testpresence"
	"github.com/dashsync/dashsync/internal/wsclient"
)

// presenceMsgs returns the presence messages of ch with their joined and left lists.
func presenceMsgs(t testing.TB, ms []wsclient.Msg, ch string) (joined, left [][]testpresence.Entry) {
	t.Helper()
	for _, m := range ofType(ms, "presence") {
		if m.Channel != ch {
			t.Fatalf("a presence message of %s reached a subscriber of %s only: %s", m.Channel, ch, m.Raw)
		}
		j, l := testpresence.Changes(t, m)
		joined, left = append(joined, j), append(left, l)
	}
	return joined, left
}

// countClients counts how often each client appears across lists; it fails on an
// entry of another user than user.
func countClients(t testing.TB, lists [][]testpresence.Entry, user string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, l := range lists {
		for _, e := range l {
			if e.User != user {
				t.Fatalf("presence entry %+v: got user %q, want %q", e, e.User, user)
			}
			n[e.Client]++
		}
	}
	return n
}

// maxCoalesced is the most presence messages a hub keeping SPEC §9 may send on one
// channel for changes made from start on and all seen by seen: at most one message
// per interval, the first an interval after the first change reached the hub (which
// is after start), so floor(elapsed/interval), and one more for timer and clock
// granularity. The bound grows with the time the machine took, so a slow machine
// cannot fail it; a hub sending a message per change fails it whenever the changes
// came within an interval or two, the usual case.
func maxCoalesced(start, seen time.Time, interval time.Duration) int {
	return 1 + int(seen.Sub(start)/interval)
}

func samePresence(a, b []testpresence.User) bool {
	return slices.EqualFunc(a, b, func(x, y testpresence.User) bool { return x.User == y.User && slices.Equal(x.Clients, y.Clients) })
}

// subscribePresence subscribes c to ch and returns the presence list of the reply.
func subscribePresence(t testing.TB, c *wsclient.Client, ch string) []testpresence.User {
	t.Helper()
	r := req(t, c, map[string]any{"type": "subscribe", "channel": ch})
	if r.Type != "subscribed" {
		t.Fatalf("subscribe %s: got %s", ch, r.Raw)
	}
	var p []testpresence.User
	if err := json.Unmarshal(r.Presence, &p); err != nil {
		t.Fatalf("subscribed.presence: %v in %s", err, r.Raw)
	}
	return p
}

// TestPresence_CoalescedJoinsAndLeavesPerClient: presence is per client (a user with
// several tabs is one user with several clients), joins and leaves are coalesced into
// at most one message per interval carrying each change once, and `subscribed` lists
// each user once with all their clients, the subscriber's own included (SPEC §5, §9).
func TestPresence_CoalescedJoinsAndLeavesPerClient(t *testing.T) {
	t.Parallel()
	const interval = 500 * time.Millisecond
	s := testenv.New(t, testenv.Options{Hub: func(c *hub.Config) { c.PresenceInterval = interval }})
	al, _ := seed(t, s, "alice")
	bl, _ := seed(t, s, "bob")
	ach, bch := "layout:"+al.ID, "layout:"+bl.ID

	// An observer tab of alice's, already there and told of its own join.
	obsBox := newInbox()
	obs := s.Dial(t, "alice", obsBox.add)
	if p := subscribePresence(t, obs, ach); !samePresence(p, []testpresence.User{{User: "alice", Clients: []string{obs.Hello.Client}}}) {
		t.Fatalf("the first subscriber's presence: got %+v, want alice with its own client only", p)
	}
	obsBox.waitFor(t, "the observer's own join", func(ms []wsclient.Msg) bool { return len(ofType(ms, "presence")) == 1 })
	if j, _ := presenceMsgs(t, obsBox.all(), ach); !slices.Equal(j[0], []testpresence.Entry{{User: "alice", Client: obs.Hello.Client}}) {
		t.Fatalf("the observer's own join: got %+v", j[0])
	}

	// Three more tabs of alice's and one of bob's (on his own layout) join at once.
	tabs := make([]*wsclient.Client, 3)
	for i := range tabs {
		tabs[i] = s.Dial(t, "alice", nil)
	}
	bobBox := newInbox()
	bob := s.Dial(t, "bob", bobBox.add)
	subs := append(slices.Clone(tabs), bob)
	raw := make([]wsclient.Msg, len(subs))
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	// No change of ach is pending now (the observer's own join was flushed): every
	// presence message from here on carries the joins below, until they are all seen.
	joinsFrom := time.Now()
	for i, c := range subs {
		ch := ach
		if c == bob {
			ch = bch
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			raw[i], errs[i] = c.Request(ctx, map[string]any{"type": "subscribe", "channel": ch})
		})
	}
	wg.Wait()
	replies := make([][]testpresence.User, len(tabs))
	for i := range subs {
		if errs[i] != nil || raw[i].Type != "subscribed" {
			t.Fatalf("subscribe %d: got %s, %v", i, raw[i].Raw, errs[i])
		}
		if i < len(tabs) {
			if err := json.Unmarshal(raw[i].Presence, &replies[i]); err != nil {
				t.Fatalf("subscribed.presence: %v in %s", err, raw[i].Raw)
			}
		}
	}

	all := []string{obs.Hello.Client}
	for _, c := range tabs {
		all = append(all, c.Hello.Client)
	}
	for i, p := range replies {
		// alice once, with the observer, this tab, and whichever tabs joined before.
		if len(p) != 1 || p[0].User != "alice" || !slices.IsSorted(p[0].Clients) ||
			!slices.Contains(p[0].Clients, obs.Hello.Client) || !slices.Contains(p[0].Clients, tabs[i].Hello.Client) {
			t.Fatalf("tab %d's subscribed.presence: got %+v, want alice once with the observer and its own client", i, p)
		}
		for _, c := range p[0].Clients {
			if !slices.Contains(all, c) {
				t.Fatalf("tab %d's subscribed.presence lists %s, which is no tab of alice's", i, c)
			}
		}
	}

	ms := obsBox.waitFor(t, "the three joins", func(ms []wsclient.Msg) bool {
		j, _ := presenceMsgs(t, ms, ach)
		return len(countClients(t, j, "alice")) == 4
	})
	joinsSeen := time.Now()
	joined, left := presenceMsgs(t, ms, ach)
	n := countClients(t, joined, "alice")
	for _, c := range all {
		if n[c] != 1 {
			t.Fatalf("client %s appears %d times in the joined lists %+v, want once", c, n[c], joined)
		}
	}
	// Coalesced: after the observer's own, at most one message per interval carried
	// the three joins (each once, checked above), however the joins fell into
	// intervals on this machine.
	if got, most := len(joined)-1, maxCoalesced(joinsFrom, joinsSeen, interval); got > most {
		t.Fatalf("three joins seen within %v: got %d presence messages %+v, want at most %d (one per %v)",
			joinsSeen.Sub(joinsFrom), got, joined[1:], most, interval)
	}
	if len(countClients(t, left, "alice")) != 0 {
		t.Fatalf("left lists before anyone left: got %+v", left)
	}

	// A later subscriber sees alice once, with every client, its own included.
	late := s.Dial(t, "alice", nil)
	want := slices.Sorted(slices.Values(append(slices.Clone(all), late.Hello.Client)))
	if p := subscribePresence(t, late, ach); !samePresence(p, []testpresence.User{{User: "alice", Clients: want}}) {
		t.Fatalf("a fifth tab's subscribed.presence: got %+v, want [{alice %v}]", p, want)
	}
	obsBox.waitFor(t, "the fifth tab's join", func(ms []wsclient.Msg) bool {
		j, _ := presenceMsgs(t, ms, ach)
		return countClients(t, j, "alice")[late.Hello.Client] == 1
	})

	// One tab closes cleanly and one is cut: each leaves once, coalesced.
	before := len(ofType(obsBox.all(), "presence"))
	leavesFrom := time.Now() // the fifth tab's join was flushed: nothing is pending
	if err := tabs[1].Close(); err != nil {
		t.Fatalf("close tab 1: %v", err)
	}
	tabs[2].CloseNow()
	gone := []string{tabs[1].Hello.Client, tabs[2].Hello.Client}
	ms = obsBox.waitFor(t, "two leaves", func(ms []wsclient.Msg) bool {
		_, l := presenceMsgs(t, ms, ach)
		return len(countClients(t, l, "alice")) == 2
	})
	leavesSeen := time.Now()
	joined, left = presenceMsgs(t, ofType(ms, "presence")[before:], ach)
	nl := countClients(t, left, "alice")
	for _, c := range gone {
		if nl[c] != 1 {
			t.Fatalf("client %s appears %d times in the left lists %+v, want once", c, nl[c], left)
		}
	}
	if len(countClients(t, joined, "alice")) != 0 {
		t.Fatalf("joined lists when tabs only left: got %+v", joined)
	}
	if most := maxCoalesced(leavesFrom, leavesSeen, interval); len(left) > most {
		t.Fatalf("two leaves seen within %v: got %d presence messages %+v, want at most %d (one per %v)",
			leavesSeen.Sub(leavesFrom), len(left), left, most, interval)
	}
	if p := subscribePresence(t, s.Dial(t, "alice", nil), ach); len(p) != 1 || len(p[0].Clients) != 4 ||
		slices.Contains(p[0].Clients, gone[0]) || slices.Contains(p[0].Clients, gone[1]) {
		t.Fatalf("presence after two tabs left: got %+v, want alice with the 4 remaining clients", p)
	}

	// Bob's channel heard of bob's tab only; alice's never of bob (checked by
	// presenceMsgs and countClients above).
	bms := bobBox.waitFor(t, "bob's own join", func(ms []wsclient.Msg) bool { return len(ofType(ms, "presence")) > 0 })
	bj, bleft := presenceMsgs(t, bms, bch)
	if nb := countClients(t, bj, "bob"); len(nb) != 1 || nb[bob.Hello.Client] != 1 || len(countClients(t, bleft, "bob")) != 0 {
		t.Fatalf("bob's presence: joined %+v left %+v, want his own join only", bj, bleft)
	}
}
