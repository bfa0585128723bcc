package sync_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// TestText_NULAndInvalidUTF8AreFoundWhereverTheyAre: the text rules of SPEC §12 find
// a NUL (raw or escaped) and invalid UTF-8 at the first byte, the last byte and in
// between, and do not mistake an escaped backslash or a short escape for a NUL.
func TestText_NULAndInvalidUTF8AreFoundWhereverTheyAre(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"", true},
		{"plain", true},
		{"é ünïcode ✓", true},
		{"\x00", false},
		{"\x00abc", false},
		{"abc\x00", false},
		{"a\x00b", false},
		{"\xff", false},
		{"abc\xff", false},
	} {
		if got := dsync.ValidText(c.s); got != c.want {
			t.Errorf("ValidText(%q) = %v, want %v", c.s, got, c.want)
		}
	}

	for _, c := range []struct {
		b    string
		want int
	}{
		{`"plain"`, -1},
		{`\u0000`, 0},
		{`"\u0000"`, 1},
		{`"ab\u0000"`, 3},
		{`"\u0001"`, -1},
		{`"\\u0000"`, -1}, // an escaped backslash, then the text u0000
		{`"\\\u0000"`, 3}, // an escaped backslash, then an escaped NUL
		{`"\n\u0000"`, 3}, // another escape before it
		{`{"a":"\"","b":1}`, -1},
		{`"x\u000`, -1}, // an escape cut short at the end of the input
		{`"x\u00`, -1},
		{`"x\u`, -1},
		{`"x\`, -1},
		{`\`, -1},
	} {
		if got := dsync.NULEscape([]byte(c.b)); got != c.want {
			t.Errorf("NULEscape(%s) = %d, want %d", c.b, got, c.want)
		}
	}

	for _, c := range []struct {
		b    string
		want bool
	}{
		{`{"a":"b"}`, true},
		{`"é"`, true},
		{`\u0000`, false},
		{`"\u0000"`, false},
		{"\x00", false},
		{"\x00\"a\"", false},
		{"\"a\"\x00", false},
		{"\"\xff\"", false},
	} {
		if got := dsync.ValidJSONText([]byte(c.b)); got != c.want {
			t.Errorf("ValidJSONText(%q) = %v, want %v", c.b, got, c.want)
		}
	}
}

// TestJSONDepth_CountsNestingOutsideStrings: arrays and objects count, brackets in
// strings (escaped quotes included) do not, closing one lowers the depth, and the count
// stops one past MaxJSONDepth.
func TestJSONDepth_CountsNestingOutsideStrings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		b    string
		want int
	}{
		{`1`, 0},
		{`"[[["`, 0},
		{`[]`, 1},
		{`{"a":[1,{"b":2}]}`, 3},
		{`[[],[],[]]`, 2},
		{`[[]][[]][[]]`, 2},
		{`["\"[[[", []]`, 2},
		{`["\\", [[]]]`, 3},
		{`{"a\"b":{"c":"]]]"}}`, 2},
		{strings.Repeat("[", 64) + strings.Repeat("]", 64), 64},
		{strings.Repeat("[", 65) + strings.Repeat("]", 65), 65},
		{strings.Repeat("[", 1000), dsync.MaxJSONDepth + 1},
	} {
		if got := dsync.JSONDepth([]byte(c.b)); got != c.want {
			t.Errorf("JSONDepth(%.40s) = %d, want %d", c.b, got, c.want)
		}
	}
	// Canonical takes JSON nested MaxJSONDepth deep, not one more.
	deep := func(n int) json.RawMessage {
		return json.RawMessage(strings.Repeat("[", n) + strings.Repeat("]", n))
	}
	if _, err := dsync.Canonical(deep(dsync.MaxJSONDepth)); err != nil {
		t.Errorf("Canonical of %d deep: %v, want it accepted", dsync.MaxJSONDepth, err)
	}
	if _, err := dsync.Canonical(deep(dsync.MaxJSONDepth + 1)); err == nil {
		t.Errorf("Canonical of %d deep: accepted, want an error", dsync.MaxJSONDepth+1)
	}
}

// TestTime_JSONIsRFC3339MillisecondsUTCOrNull: a zero time is null and null reads back
// as zero; any RFC 3339 time reads back truncated to milliseconds in UTC; anything else
// is an error that leaves the value alone.
func TestTime_JSONIsRFC3339MillisecondsUTCOrNull(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(dsync.Time{})
	if err != nil || string(b) != "null" {
		t.Errorf("zero time: %s, %v; want null", b, err)
	}
	at := dsync.NewTime(time.Date(2026, 12, 1, 13, 4, 5, 123456789, time.FixedZone("x", 3600)))
	b, err = json.Marshal(at)
	if err != nil || string(b) != `"2026-12-01T12:04:05.123Z"` {
		t.Errorf("time: %s, %v; want \"2026-12-01T12:04:05.123Z\"", b, err)
	}

	got := at
	if err := json.Unmarshal([]byte(`null`), &got); err != nil || !got.IsZero() {
		t.Errorf("null: %v, %v; want the zero time", got, err)
	}
	if err := json.Unmarshal([]byte(`"2026-12-01T14:04:05.987654+02:00"`), &got); err != nil ||
		!got.Equal(time.Date(2026, 12, 1, 12, 4, 5, 987000000, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("offset time: %v, %v; want 2026-12-01T12:04:05.987Z in UTC", got, err)
	}
	for _, bad := range []string{`12`, `true`, `"yesterday"`, `"2026-12-01"`, `{}`} {
		keep := at
		if err := json.Unmarshal([]byte(bad), &keep); err == nil {
			t.Errorf("%s: read as %v, want an error", bad, keep)
		} else if !keep.Equal(at.Time) {
			t.Errorf("%s: the value changed to %v on error", bad, keep)
		}
	}
	// Inside an object, as clients send it.
	var c struct {
		At dsync.Time `json:"at"`
	}
	if err := json.Unmarshal([]byte(`{"at":"2026-12-01T12:04:05Z"}`), &c); err != nil || c.At.Unix() != at.Unix() {
		t.Errorf("in an object: %v, %v", c.At, err)
	}
}

// TestClone_NeverSharesOrNilsMaps: a clone's maps are its own and never nil, so a
// layout or widget without items or settings encodes them as {} (not null) and an
// edit of the clone leaves the original alone.
func TestClone_NeverSharesOrNilsMaps(t *testing.T) {
	t.Parallel()
	w := dsync.Widget{ID: "w", Type: "stat"}.Clone()
	b, _ := json.Marshal(w)
	if w.Settings == nil || !strings.Contains(string(b), `"settings":{}`) {
		t.Errorf("widget without settings: %s, want settings {}", b)
	}
	l := dsync.Layout{ID: "l", Name: "n", Columns: 1}.Clone()
	b, _ = json.Marshal(l)
	if l.Items == nil || l.Settings == nil || !strings.Contains(string(b), `"items":{}`) || !strings.Contains(string(b), `"settings":{}`) {
		t.Errorf("layout without items and settings: %s, want both {}", b)
	}

	orig := dsync.Widget{ID: "w", Settings: dsync.Settings{"a": json.RawMessage(`1`)}}
	c := orig.Clone()
	c.Settings["a"] = json.RawMessage(`2`)
	c.Settings["b"] = json.RawMessage(`3`)
	if string(orig.Settings["a"]) != "1" || len(orig.Settings) != 1 {
		t.Errorf("editing a widget's clone changed it: %v", orig.Settings)
	}
	ol := dsync.Layout{Items: map[string]dsync.Item{"w": {W: 1, H: 1}}, Settings: dsync.Settings{"a": json.RawMessage(`1`)}}
	cl := ol.Clone()
	cl.Items["w"] = dsync.Item{W: 2, H: 2}
	cl.Settings["a"] = json.RawMessage(`2`)
	if ol.Items["w"].W != 1 || string(ol.Settings["a"]) != "1" {
		t.Errorf("editing a layout's clone changed it: %v %v", ol.Items, ol.Settings)
	}
}
