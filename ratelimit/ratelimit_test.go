package ratelimit_test

import (
	"math"
	"testing"
	"time"

	"github.com/dashsync/dashsync/ratelimit"
)

func TestPerSecond_BurstIsTwiceTheRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate float64
		want ratelimit.Limit
	}{
		{100, ratelimit.Limit{Rate: 100, Burst: 200}},
		{1.5, ratelimit.Limit{Rate: 1.5, Burst: 3}},
		{0.01, ratelimit.Limit{Rate: 0.01, Burst: 1}},
		{0, ratelimit.Limit{}},
		{-3, ratelimit.Limit{}},
		{math.NaN(), ratelimit.Limit{}},
	} {
		if got := ratelimit.PerSecond(tc.rate); got != tc.want {
			t.Errorf("PerSecond(%v): got %+v, want %+v", tc.rate, got, tc.want)
		}
	}
	if d := ratelimit.DefaultLimits(); d.REST != (ratelimit.Limit{Rate: 100, Burst: 200}) || d.Messages != d.REST || d.Edits != d.REST {
		t.Errorf("got defaults %+v, want 100/s burst 200 for each budget (SPEC §9)", d)
	}
}

func TestLimit_Unlimited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		l    ratelimit.Limit
		want bool
	}{
		{ratelimit.Limit{}, true},
		{ratelimit.Limit{Rate: -1, Burst: 5}, true},
		{ratelimit.Limit{Rate: math.NaN()}, true},
		{ratelimit.Limit{Rate: math.Inf(1)}, true},
		{ratelimit.Limit{Rate: 0.001}, false},
		{ratelimit.Limit{Rate: 100, Burst: 200}, false},
	} {
		if got := tc.l.Unlimited(); got != tc.want {
			t.Errorf("%+v.Unlimited(): got %v, want %v", tc.l, got, tc.want)
		}
	}
}

func TestResult_RetryAfterMsRoundsUpAndIsAtLeastOne(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		r    ratelimit.Result
		want int64
	}{
		{ratelimit.Result{Allowed: true}, 0},
		{ratelimit.Result{RetryAfter: time.Nanosecond}, 1},
		{ratelimit.Result{RetryAfter: 10 * time.Millisecond}, 10},
		{ratelimit.Result{RetryAfter: 10*time.Millisecond + 1}, 11},
		{ratelimit.Result{RetryAfter: 0}, 1},
	} {
		if got := tc.r.RetryAfterMs(); got != tc.want {
			t.Errorf("%+v.RetryAfterMs(): got %d, want %d", tc.r, got, tc.want)
		}
	}
}
