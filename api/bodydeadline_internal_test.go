package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// TestBodyDeadline_BoundsTheBodyOnly: the body deadline bounds reading a body, never
// a handler. One that runs past it, after reading its body or with no body to read,
// keeps its context (net/http's background read would cancel it at a deadline left
// on the connection), and its answer keeps the connection for the next request.
func TestBodyDeadline_BoundsTheBodyOnly(t *testing.T) {
	t.Parallel()
	const wait = 200 * time.Millisecond
	s := &Server{bodyWait: wait}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(s.bodyDeadline)
	slow := func(c *gin.Context) {
		if c.Request.Method == http.MethodPost { // a GET handler reads no body
			if _, err := io.ReadAll(c.Request.Body); err != nil {
				c.String(http.StatusBadRequest, "read: %v", err)
				return
			}
		}
		select {
		case <-c.Request.Context().Done():
			c.String(http.StatusServiceUnavailable, "cancelled: %v", c.Request.Context().Err())
		case <-time.After(3 * wait): // the handler's own work, longer than the deadline
			c.String(http.StatusOK, "done")
		}
	}
	r.POST("/slow", slow)
	r.GET("/slow", slow)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, method string
		body         io.Reader
	}{
		{"with a body", http.MethodPost, strings.NewReader("a body in time")},
		{"without a body", http.MethodGet, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 { // the second request reuses the connection
				rq, err := http.NewRequest(tc.method, srv.URL+"/slow", tc.body)
				if err != nil {
					t.Fatal(err)
				}
				res, err := srv.Client().Do(rq)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK || string(b) != "done" {
					t.Fatalf("request %d: got %d %q, want 200 done", i+1, res.StatusCode, b)
				}
				if res.Close {
					t.Errorf("request %d: the answer closes the connection, though the body was read", i+1)
				}
				tc.body = strings.NewReader("another")
				if tc.method == http.MethodGet {
					tc.body = nil
				}
			}
		})
	}
}
