package sync

import "context"

// guard wraps the service's store so that no id, owner or editId that breaks the text
// rules of SPEC §12 (invalid UTF-8, NUL) reaches it, whichever way it came (a URL, a
// batch's ids, a WebSocket channel): such an object cannot exist, so the answer is
// not_found, the same on every store.
func guard(s Store) Store {
	if g, ok := s.(guardedStore); ok {
		return g
	}
	return guardedStore{guardedReader: guardedReader{s}, inner: s}
}

type guardedStore struct {
	guardedReader
	inner Store
}

func (g guardedStore) InTx(ctx context.Context, fn func(Tx) error) error {
	return g.inner.InTx(ctx, func(t Tx) error { return fn(guardedTx{guardedReader: guardedReader{t}, writes: t}) })
}

func (g guardedStore) Ping(ctx context.Context) error { return g.inner.Ping(ctx) }
func (g guardedStore) Close() error                   { return g.inner.Close() }

type guardedTx struct {
	guardedReader
	writes
}

// guardedReader checks the text arguments of each read.
type guardedReader struct{ r Reader }

func bad(ss ...string) error {
	for _, s := range ss {
		if !ValidText(s) {
			return Errorf(CodeNotFound, "no object has the id %q", s)
		}
	}
	return nil
}

func (g guardedReader) Layout(ctx context.Context, owner, id string) (Layout, error) {
	if err := bad(owner, id); err != nil {
		return Layout{}, err
	}
	return g.r.Layout(ctx, owner, id)
}
func (g guardedReader) Layouts(ctx context.Context, owner string) ([]Layout, error) {
	if err := bad(owner); err != nil {
		return nil, err
	}
	return g.r.Layouts(ctx, owner)
}
func (g guardedReader) LayoutChanges(ctx context.Context, id string, after, upTo int64) ([]Change, error) {
	if err := bad(id); err != nil {
		return nil, err
	}
	return g.r.LayoutChanges(ctx, id, after, upTo)
}
func (g guardedReader) LayoutHistory(ctx context.Context, id string, before int64, limit int) ([]Change, error) {
	if err := bad(id); err != nil {
		return nil, err
	}
	return g.r.LayoutHistory(ctx, id, before, limit)
}
func (g guardedReader) LayoutChangeByEdit(ctx context.Context, id, editID string) (Change, error) {
	if err := bad(id, editID); err != nil {
		return Change{}, err
	}
	return g.r.LayoutChangeByEdit(ctx, id, editID)
}
func (g guardedReader) Widget(ctx context.Context, owner, id string) (Widget, error) {
	if err := bad(owner, id); err != nil {
		return Widget{}, err
	}
	return g.r.Widget(ctx, owner, id)
}
func (g guardedReader) Widgets(ctx context.Context, owner string) ([]Widget, error) {
	if err := bad(owner); err != nil {
		return nil, err
	}
	return g.r.Widgets(ctx, owner)
}
func (g guardedReader) WidgetChanges(ctx context.Context, id string, after, upTo int64) ([]Change, error) {
	if err := bad(id); err != nil {
		return nil, err
	}
	return g.r.WidgetChanges(ctx, id, after, upTo)
}
func (g guardedReader) WidgetChangeByEdit(ctx context.Context, id, editID string) (Change, error) {
	if err := bad(id, editID); err != nil {
		return Change{}, err
	}
	return g.r.WidgetChangeByEdit(ctx, id, editID)
}
func (g guardedReader) Dashboard(ctx context.Context, owner string) (Dashboard, error) {
	if err := bad(owner); err != nil {
		return Dashboard{}, err
	}
	return g.r.Dashboard(ctx, owner)
}
func (g guardedReader) LayoutPaths(ctx context.Context, id string, after, upTo int64) ([]Change, error) {
	if err := bad(id); err != nil {
		return nil, err
	}
	return g.r.LayoutPaths(ctx, id, after, upTo)
}
func (g guardedReader) WidgetPaths(ctx context.Context, id string, after, upTo int64) ([]Change, error) {
	if err := bad(id); err != nil {
		return nil, err
	}
	return g.r.WidgetPaths(ctx, id, after, upTo)
}
func (g guardedReader) LayoutAs(ctx context.Context, id, user string) (Layout, Role, error) {
	if err := bad(id, user); err != nil {
		return Layout{}, "", err
	}
	return g.r.LayoutAs(ctx, id, user)
}
func (g guardedReader) Access(ctx context.Context, id string) (Access, error) {
	if err := bad(id); err != nil {
		return Access{}, err
	}
	return g.r.Access(ctx, id)
}
func (g guardedReader) SharedWith(ctx context.Context, user string) ([]SharedLayout, error) {
	if err := bad(user); err != nil {
		return nil, err
	}
	return g.r.SharedWith(ctx, user)
}
func (g guardedReader) Link(ctx context.Context, id string) (Link, error) {
	if err := bad(id); err != nil {
		return Link{}, err
	}
	return g.r.Link(ctx, id)
}
func (g guardedReader) Links(ctx context.Context, id string) ([]Link, error) {
	if err := bad(id); err != nil {
		return nil, err
	}
	return g.r.Links(ctx, id)
}
