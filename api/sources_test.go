package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dashsync/dashsync/internal/testnet"
	dsync "github.com/dashsync/dashsync/sync"
)

// TestSources_SSRFThroughREST runs http sources through the REST API with the SSRF
// policy of SPEC §7 and §9. The http kind resolves from a table and connects to
// loopback only (internal/testnet): a broken policy fails this test, it never sends
// traffic beyond loopback.
func TestSources_SSRFThroughREST(t *testing.T) {
	t.Parallel()
	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		otherHits.Add(1)
		fmt.Fprint(w, `{"other":true}`)
	}))
	t.Cleanup(other.Close)
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(allowed.Close)
	allowedHostPort := strings.TrimPrefix(allowed.URL, "http://")
	port := allowedHostPort[strings.LastIndex(allowedHostPort, ":")+1:]
	otherPort := other.URL[strings.LastIndex(other.URL, ":")+1:]

	resolver := testnet.NewResolver(map[string][]string{
		"loop.test":     {"127.0.0.1"},
		"intranet.test": {"10.0.0.7", "192.168.1.7"},
		"rebind.test":   {"127.0.0.1"},
	})
	store := backends[0].open(t) // sqlite: the policy does not depend on the store
	sources := newTestSources(t, []string{allowedHostPort}, resolver)
	h := newHarnessWith(t, store, sources)
	httpWidget := func(u string) map[string]any {
		return map[string]any{"type": "stat", "title": "T", "source": map[string]any{"kind": "http", "url": u}}
	}

	t.Run("create with a forbidden URL is validation_failed", func(t *testing.T) {
		t.Parallel()
		c := h.newUser(t)
		before := c.snapshot(t, "/api/dashboard/widgets")
		for _, u := range []string{
			"http://127.0.0.1:" + otherPort + "/",
			"http://[::1]:" + port + "/",
			"http://10.0.0.1/",
			"http://169.254.169.254/latest/meta-data/",
			"http://[fd00:ec2::254]/",
			"http://loop.test:" + otherPort + "/",
			"http://intranet.test/",
			"http://nowhere.test/",
			"gopher://example.test/",
		} {
			e := c.do(t, "POST", "/api/dashboard/widgets", httpWidget(u)).wantError(t, http.StatusBadRequest, "validation_failed")
			e.wantDetail(t, "source.url", "")
		}
		c.wantUnchanged(t, before, "/api/dashboard/widgets")
	})

	t.Run("update to a forbidden URL is validation_failed and changes nothing", func(t *testing.T) {
		t.Parallel()
		c := h.newUser(t)
		var w widget
		c.do(t, "POST", "/api/dashboard/widgets", httpWidget(allowed.URL+"/data")).want(t, http.StatusCreated, &w)
		path := "/api/dashboard/widgets/" + w.ID
		before := c.snapshot(t, path)
		body := httpWidget("http://169.254.169.254/latest/meta-data/")
		body["version"] = w.Version
		c.do(t, "POST", path, body).wantError(t, http.StatusBadRequest, "validation_failed").wantDetail(t, "source.url", "forbidden")
		c.wantUnchanged(t, before, path)
	})

	t.Run("an allow-listed loopback server works", func(t *testing.T) {
		t.Parallel()
		c := h.newUser(t)
		var w widget
		c.do(t, "POST", "/api/dashboard/widgets", httpWidget(allowed.URL+"/data")).want(t, http.StatusCreated, &w)
		var got struct {
			Data dsync.WidgetData `json:"data"`
		}
		c.do(t, "GET", "/api/dashboard/widgets/"+w.ID, nil).want(t, http.StatusOK, &got)
		if string(got.Data.Data) != `{"ok":true}` || got.Data.Stale {
			t.Fatalf("got %+v, want fresh {\"ok\":true}", got.Data)
		}
	})

	t.Run("a redirect to a forbidden address is source_failed", func(t *testing.T) {
		t.Parallel()
		c := h.newUser(t)
		var w widget
		c.do(t, "POST", "/api/dashboard/widgets", httpWidget(allowed.URL+"/redirect")).want(t, http.StatusCreated, &w)
		e := c.do(t, "GET", "/api/dashboard/widgets/"+w.ID, nil).wantError(t, http.StatusBadGateway, "source_failed")
		if !strings.Contains(e.Error.Message, "redirected to a loopback address") {
			t.Fatalf("message %q does not say why", e.Error.Message)
		}
		if n := otherHits.Load(); n != 0 {
			t.Fatalf("the server behind the redirect got %d requests, want 0", n)
		}
	})

	t.Run("a host that later resolves to a forbidden address serves stale data, then source_failed", func(t *testing.T) {
		t.Parallel()
		c := h.newUser(t)
		var w widget
		c.do(t, "POST", "/api/dashboard/widgets", httpWidget("http://rebind.test:"+port+"/data")).want(t, http.StatusCreated, &w)
		path := "/api/dashboard/widgets/" + w.ID
		c.do(t, "GET", path, nil).want(t, http.StatusOK, nil)
		resolver.Set("rebind.test", "10.0.0.1")
		t.Cleanup(func() { resolver.Set("rebind.test", "127.0.0.1") })
		// A kept-alive connection to the address checked before may serve a refresh or
		// two; the next new connection resolves again and is refused.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_ = sources.Close() // drops idle connections
			var got struct {
				Data dsync.WidgetData `json:"data"`
			}
			c.do(t, "GET", path+"?refresh=true", nil).want(t, http.StatusOK, &got)
			if string(got.Data.Data) != `{"ok":true}` {
				t.Fatalf("got %+v, want the last good data", got.Data)
			}
			if got.Data.Stale {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the refreshes kept reaching the old address")
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.do(t, "DELETE", path, nil).want(t, http.StatusNoContent, nil)
		c.do(t, "GET", path, nil).wantError(t, http.StatusBadGateway, "source_failed")
	})
}
