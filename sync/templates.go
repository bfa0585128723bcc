package sync

import (
	"context"
	"encoding/json"
	"slices"
)

// Template is a built-in starting point: a layout and the widgets it places.
type Template struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description"`

	columns int
	tiles   []tile
}

type tile struct {
	typ, title string
	source     Source
	item       Item
}

func static(data string) Source {
	return Source{Kind: "static", Data: json.RawMessage(data)}
}

// demo is a source of a built-in demo kind (demo.counter, demo.series, demo.clock)
// refreshed, and expiring, every refresh seconds.
func demo(kind string, refresh int) Source {
	return Source{Kind: kind, RefreshSeconds: refresh, TTLSeconds: refresh}
}

// templates are the built-in templates, in the order they are listed.
var templates = []Template{
	{
		Name: "ops-overview", Title: "Ops overview",
		Description: "Service health at a glance: live requests and latency, error rate, deployments and notes.",
		columns:     12,
		tiles: []tile{
			{"stat", "Requests served", demo("demo.counter", 5), Item{0, 0, 3, 2}},
			{"stat", "Error rate", static(`{"value":0.4,"unit":"%"}`), Item{3, 0, 3, 2}},
			{"timeseries", "Latency p99", demo("demo.series", 5), Item{6, 0, 6, 4}},
			{"table", "Deployments", static(`{"columns":["service","version"],"rows":[["api","1.4.2"],["web","2.0.1"]]}`), Item{0, 2, 6, 4}},
			{"text", "Runbook", static(`{"text":"Page the on-call engineer when the error rate stays above 1% for 5 minutes."}`), Item{0, 6, 12, 2}},
		},
	},
	{
		Name: "starter", Title: "Starter",
		Description: "A small layout with a counter and a note, to try co-editing.",
		columns:     12,
		tiles: []tile{
			{"stat", "Counter", Source{Kind: "push"}, Item{0, 0, 4, 2}},
			{"text", "Notes", static(`{"text":"Drag me around."}`), Item{4, 0, 8, 2}},
		},
	},
	{
		Name: "demo", Title: "Live demo",
		Description: "Every kind of tile the demo page draws, live: a counter, a time series, a clock, a table and a note.",
		columns:     12,
		tiles: []tile{
			{"stat", "Requests served", demo("demo.counter", 2), Item{0, 0, 3, 2}},
			{"clock", "Server time", demo("demo.clock", 1), Item{3, 0, 3, 2}},
			{"timeseries", "Latency p99 (ms)", demo("demo.series", 2), Item{6, 0, 6, 4}},
			{"text", "Notes", static(`{"text":"Open this page in a second window and drag the tiles around: every change shows in both at once. Focus a tile and use the arrow keys to move it (Shift + arrows resizes it)."}`), Item{0, 2, 6, 2}},
			{"table", "Deployments", static(`{"columns":["service","version","region","status"],"rows":[["api","1.4.2","eu-west-1","healthy"],["web","2.0.1","eu-west-1","healthy"],["worker","0.9.7","us-east-1","degraded"],["billing","3.2.0","us-east-1","healthy"]]}`), Item{0, 4, 12, 3}},
		},
	},
}

// Templates lists the built-in templates.
func (s *Service) Templates() []Template { return slices.Clone(templates) }

// createFromTemplate creates the template's widgets and a layout placing them, in one
// transaction.
func (s *Service) createFromTemplate(ctx context.Context, owner, name, author string) (Layout, error) {
	i := slices.IndexFunc(templates, func(t Template) bool { return t.Name == name })
	if i < 0 {
		return Layout{}, Invalid("template", "oneof", "", "no built-in template named %q", name)
	}
	tpl := templates[i]
	var out Layout
	err := s.run(ctx, func(t *tx) error {
		l := Layout{Name: tpl.Title, Columns: tpl.columns, Items: map[string]Item{}}
		for _, tl := range tpl.tiles {
			w, err := s.insertWidget(ctx, t, owner, Widget{Type: tl.typ, Title: tl.title, Source: tl.source}, author)
			if err != nil {
				return err
			}
			l.Items[w.ID] = tl.item
		}
		var err error
		out, err = s.insertLayout(ctx, t, owner, l, author)
		return err
	})
	return out, err
}
