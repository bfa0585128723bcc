package source_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/dashsync/dashsync/source"
	dsync "github.com/dashsync/dashsync/sync"
)

// demo.series of a widget stored before refreshSeconds was bounded (SPEC §12) neither
// panics nor overflows: its points are one bounded period apart.
func TestDemo_SeriesWithOutOfBoundsRefreshSeconds(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_700_000_012_345)
	s := source.Series{Now: func() time.Time { return now }}
	cases := []struct {
		refreshSeconds int
		stepMs         float64
	}{
		{1 << 61, dsync.MaxRefreshSeconds * 1000}, // ×1000 wraps to 0: a division by zero
		{math.MaxInt, dsync.MaxRefreshSeconds * 1000},
		{math.MaxInt / 1000, dsync.MaxRefreshSeconds * 1000},
		{dsync.MaxRefreshSeconds + 1, dsync.MaxRefreshSeconds * 1000},
		{0, dsync.DefaultRefreshSeconds * 1000},
		{-1, dsync.DefaultRefreshSeconds * 1000},
		{math.MinInt, dsync.DefaultRefreshSeconds * 1000},
	}
	for _, c := range cases {
		w := dsync.Widget{ID: "w1", Owner: "alice", Source: dsync.Source{Kind: "demo.series", RefreshSeconds: c.refreshSeconds}}
		raw, err := s.Fetch(context.Background(), w)
		if err != nil {
			t.Fatalf("refreshSeconds %d: %v", c.refreshSeconds, err)
		}
		var got struct {
			Points [][2]float64 `json:"points"`
		}
		if err := json.Unmarshal(raw, &got); err != nil || len(got.Points) != source.SeriesPoints {
			t.Fatalf("refreshSeconds %d: got %.60s… (%v), want %d points", c.refreshSeconds, raw, err, source.SeriesPoints)
		}
		for i := 1; i < len(got.Points); i++ {
			if d := got.Points[i][0] - got.Points[i-1][0]; d != c.stepMs {
				t.Fatalf("refreshSeconds %d: points %d and %d are %v ms apart, want %v", c.refreshSeconds, i-1, i, d, c.stepMs)
			}
		}
		if last := got.Points[len(got.Points)-1][0]; last > float64(now.UnixMilli()) || float64(now.UnixMilli())-last >= c.stepMs {
			t.Fatalf("refreshSeconds %d: newest point at %v, want the step of now (%d)", c.refreshSeconds, last, now.UnixMilli())
		}
	}
}
