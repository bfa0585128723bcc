package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	dsync "github.com/dashsync/dashsync/sync"
)

// The race the project requires (SPEC §3.3): writers commit on the same base version
// of one layout; the store's compare-and-swap lets exactly one commit each version,
// the others get ErrStale and re-run on the new head. No update may be lost and the op
// log must have every version exactly once.
const (
	raceWriters  = 20
	raceRounds   = 3
	raceAttempts = 10 * raceWriters // a writer that needs more is starving: a bug
)

// raceResult is what one writer saw.
type raceResult struct {
	version int64 // the version it committed
	editID  string
	stales  int // ErrStale replies before it committed
	err     error
}

// testRaceReadInTx is the edit pipeline's shape: read the head inside the transaction,
// then compare-and-swap on it.
func testRaceReadInTx(t *testing.T, s dsync.Store) {
	for round := range raceRounds {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			l := newLayout(newID("user"))
			createLayout(t, s, l)
			start := make(chan struct{})
			results := make([]raceResult, raceWriters)
			var wg sync.WaitGroup
			for g := range raceWriters {
				wg.Go(func() {
					<-start
					results[g] = raceWriter(t, s, l, g, nil)
				})
			}
			close(start)
			wg.Wait()
			checkRace(t, s, l, results)
		})
	}
}

// testRaceReadBeforeTx makes every writer read the same head before any commits, so
// the first wave is a pure compare-and-swap contest: exactly one writer must win it.
func testRaceReadBeforeTx(t *testing.T, s dsync.Store) {
	for round := range raceRounds {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			l := newLayout(newID("user"))
			createLayout(t, s, l)
			var read sync.WaitGroup
			read.Add(raceWriters)
			allRead := make(chan struct{})
			results := make([]raceResult, raceWriters)
			var wg sync.WaitGroup
			for g := range raceWriters {
				wg.Go(func() {
					results[g] = raceWriter(t, s, l, g, func() {
						read.Done()
						<-allRead
					})
				})
			}
			read.Wait()
			close(allRead)
			wg.Wait()

			firstTry := 0
			for _, r := range results {
				if r.err == nil && r.stales == 0 {
					firstTry++
				}
			}
			if firstTry != 1 {
				t.Errorf("writers that committed on the shared base: got %d, want exactly 1", firstTry)
			}
			checkRace(t, s, l, results)
		})
	}
}

// raceWriter sets settings key w<g> to its own value by read-modify-write on the head
// and commits it, retrying on ErrStale. With afterFirstRead set, it reads the head
// outside the transaction and calls afterFirstRead once, after its first read.
func raceWriter(t testing.TB, s dsync.Store, l dsync.Layout, g int, afterFirstRead func()) raceResult {
	ctx := t.Context()
	key := fmt.Sprintf("w%d", g)
	value := json.RawMessage(fmt.Sprintf(`{"writer":%d,"html":"<&>"}`, g))
	res := raceResult{editID: uuid.NewString()}
	for attempt := 0; attempt < raceAttempts; attempt++ {
		var head dsync.Layout
		if afterFirstRead != nil {
			var err error
			head, err = s.Layout(ctx, l.Owner, l.ID)
			if attempt == 0 {
				afterFirstRead()
			}
			if err != nil {
				res.err = fmt.Errorf("read head: %w", err)
				return res
			}
		}
		var committed int64
		err := s.InTx(ctx, func(tx dsync.Tx) error {
			h := head
			if afterFirstRead == nil {
				var err error
				if h, err = tx.Layout(ctx, l.Owner, l.ID); err != nil {
					return err
				}
			}
			next := h.Clone()
			next.Settings[key] = value
			next.Version = h.Version + 1
			next.UpdatedAt = at(int(next.Version))
			c := dsync.Change{
				Version: next.Version,
				Ops:     []dsync.Op{{Op: dsync.OpAdd, Path: "/settings/" + key, Value: value}},
				Author:  key,
				Client:  "race",
				EditID:  res.editID,
				Time:    next.UpdatedAt,
			}
			if err := tx.UpdateLayout(ctx, next, c); err != nil {
				return err
			}
			committed = next.Version
			return nil
		})
		switch {
		case err == nil:
			res.version = committed
			return res
		case errors.Is(err, dsync.ErrStale):
			res.stales++
		default:
			res.err = err
			return res
		}
	}
	res.err = fmt.Errorf("still stale after %d attempts", raceAttempts)
	return res
}

func checkRace(t testing.TB, s dsync.Store, l dsync.Layout, results []raceResult) {
	t.Helper()
	stales := 0
	var won []int64
	for g, r := range results {
		if r.err != nil {
			t.Errorf("writer %d: %v", g, r.err)
			continue
		}
		stales += r.stales
		won = append(won, r.version)
	}
	slices.Sort(won)
	if want := seq(2, raceWriters+1); !slices.Equal(won, want) {
		t.Errorf("versions committed by the writers: got %v, want each of %v once", won, want)
	}

	head := mustGetLayout(t, s, l.Owner, l.ID)
	if want := int64(raceWriters + 1); head.Version != want {
		t.Errorf("head version: got %d, want %d", head.Version, want)
	}
	for g := range results {
		key := fmt.Sprintf("w%d", g)
		want := fmt.Sprintf(`{"writer":%d,"html":"<&>"}`, g)
		if got, ok := head.Settings[key]; !ok || string(got) != want {
			t.Errorf("settings[%s] (a lost update?): got %q, want %q", key, got, want)
		}
	}

	changes := mustLayoutChanges(t, s, l.ID, 0, head.Version)
	wantVersions(t, "op log", changes, seq(1, head.Version))
	byEdit := map[string]int{}
	for _, c := range changes {
		byEdit[c.EditID]++
	}
	for g, r := range results {
		if r.err != nil {
			continue
		}
		if n := byEdit[r.editID]; n != 1 {
			t.Errorf("writer %d's change: in the op log %d times, want once", g, n)
		}
		if i := r.version - 1; i >= 0 && int(i) < len(changes) && changes[i].EditID != r.editID {
			t.Errorf("version %d: got the change of %q, want writer %d's", r.version, changes[i].Author, g)
		}
	}
	t.Logf("%d writers, %d ErrStale retries", len(results), stales)
}
