package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/postgres"
	"github.com/dashsync/dashsync/store/sqlite"
	dsync "github.com/dashsync/dashsync/sync"
)

// TestCrash_KilledWhileGroupsCommit: a server SIGKILLed while many edits of two hot
// layouts commit in groups loses no acknowledged edit and leaves nothing half done.
// Afterwards, on both stores: every acknowledged editId is in its layout's op log
// once, at the version its ack gave; every change in the log is whole (the ops its
// editor sent, under that editId, once); the log has no gap; and replaying it gives
// the stored layout, so no group wrote its heads without its changes or the reverse.
func TestCrash_KilledWhileGroupsCommit(t *testing.T) {
	t.Parallel()
	bin := buildDashsync(t)
	const secret = "crash-test-secret-0123456789abcdef"
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := []string{"--jwt-secret", secret, "--data-dir", dir}
			var open func() (dsync.Store, error)
			switch backend {
			case "sqlite":
				open = func() (dsync.Store, error) {
					return sqlite.Open(context.Background(), filepath.Join(dir, "dashsync.db"))
				}
			case "postgres":
				url := testpg.NewDatabase(t)
				args = append(args, "--database-url", url)
				open = func() (dsync.Store, error) { return postgres.Open(context.Background(), url) }
			}
			in := startInstance(t, bin, args...)
			token, err := api.MintToken([]byte(secret), owner, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			crashWhileEditing(t, in, token, open)
		})
	}
}

// sentEdit is one edit an editor sent: its layout and the one op.
type sentEdit struct {
	layout, path string
	value        int
}

func crashWhileEditing(t *testing.T, in *instance, token string, open func() (dsync.Store, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var layouts []string
	for i := range 2 {
		body, _ := json.Marshal(map[string]any{"name": fmt.Sprint("hot ", i), "columns": 12, "items": map[string]any{}})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, in.url+"/api/dashboard/layouts", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(res.Body).Decode(&l)
		_ = res.Body.Close()
		if err != nil || res.StatusCode != http.StatusCreated {
			t.Fatalf("create layout: %d %v", res.StatusCode, err)
		}
		layouts = append(layouts, l.ID)
	}

	// Sixteen editors, eight per layout, each on its own setting, one edit at a time
	// on the newest version it knows, until the server dies under them.
	const editors, killAfter = 16, 300
	var (
		mu    sync.Mutex
		sent  = map[string]sentEdit{}
		acked = map[string]int64{}
	)
	kill := make(chan struct{})
	var killOnce sync.Once
	var wg sync.WaitGroup
	ws := "ws" + strings.TrimPrefix(in.url, "http") + "/api/ws"
	for i := range editors {
		c, _, err := wsclient.Dial(ctx, ws, wsclient.Options{Token: token})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		layout, path := layouts[i%2], fmt.Sprintf("/settings/e%d", i)
		wg.Go(func() {
			base := int64(1)
			for n := 1; ; n++ {
				id := uuid.NewString()
				mu.Lock()
				sent[id] = sentEdit{layout: layout, path: path, value: n}
				mu.Unlock()
				r, err := c.Request(ctx, map[string]any{"type": "edit", "channel": "layout:" + layout, "base": base, "editId": id,
					"ops": []map[string]any{{"op": "add", "path": path, "value": n}}})
				if err != nil {
					return // the server is gone
				}
				if r.Type != "ack" {
					t.Errorf("edit answered %s", r.Raw)
					return
				}
				mu.Lock()
				acked[id] = r.Version
				if len(acked) >= killAfter {
					killOnce.Do(func() { close(kill) })
				}
				mu.Unlock()
				base = max(base, r.Version)
			}
		})
	}
	select {
	case <-kill:
	case <-ctx.Done():
		t.Fatal("the editors did not get their acks in time")
	}
	if err := in.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-in.exited
	wg.Wait()

	st, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d edits sent, %d acknowledged before the kill", len(sent), len(acked))
	found := 0
	for _, id := range layouts {
		l, err := st.Layout(context.Background(), owner, id)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := st.LayoutChanges(context.Background(), id, 0, l.Version)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 || cs[0].Version != 1 || cs[len(cs)-1].Version != l.Version {
			t.Fatalf("layout %s at version %d: its log holds %d changes", id, l.Version, len(cs))
		}
		var doc dsync.Layout
		if err := json.Unmarshal(cs[0].Doc, &doc); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i, c := range cs {
			if c.Version != int64(i+1) {
				t.Fatalf("layout %s: version %d where %d belongs", id, c.Version, i+1)
			}
			if i == 0 {
				continue
			}
			e, ok := sent[c.EditID]
			if !ok || seen[c.EditID] {
				t.Fatalf("layout %s version %d: editId %q was not sent, or is in the log twice", id, c.Version, c.EditID)
			}
			seen[c.EditID] = true
			if len(c.Ops) != 1 || e.layout != id || c.Ops[0].Path != e.path || string(c.Ops[0].Value) != fmt.Sprint(e.value) {
				t.Fatalf("layout %s version %d holds %v, its editor sent %+v", id, c.Version, c.Ops, e)
			}
			if v, ok := acked[c.EditID]; ok {
				if v != c.Version {
					t.Fatalf("edit %s was acknowledged as version %d and is version %d", c.EditID, v, c.Version)
				}
				found++
			}
			if doc, err = dsync.ApplyLayoutOps(doc, c.Ops, true); err != nil {
				t.Fatal(err)
			}
		}
		if !dsync.SameLayoutDoc(doc, l) {
			t.Fatalf("layout %s: its log replayed gives %+v, the store holds %+v", id, doc, l)
		}
	}
	if found != len(acked) {
		t.Fatalf("%d of %d acknowledged edits are in the op logs", found, len(acked))
	}
}
