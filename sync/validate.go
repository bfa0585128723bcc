package sync

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"unicode/utf8"
)

// Limits of the data model (SPEC §2).
const (
	MaxItems        = 200
	MaxColumns      = 48
	MaxY            = 10000
	MaxH            = 100
	MaxNameLen      = 100
	MaxTitleLen     = 200
	MaxSettingsSize = 16 << 10
	MaxDataSize     = 256 << 10

	// Bounds of SPEC §12 on a widget source's periods.
	MaxRefreshSeconds = 86_400
	MaxTTLSeconds     = 2_592_000
)

var typePattern = regexp.MustCompile(`^[a-z0-9._-]{1,32}$`)

// ValidateLayout checks a layout document against the bounds of the contract. It does
// not check that the placed widgets exist (the pipeline does, against the store).
func ValidateLayout(l Layout) error {
	if err := checkText("name", l.Name); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(l.Name); n < 1 || n > MaxNameLen {
		return Invalid("name", "len", "1-100", "name must be 1 to %d characters", MaxNameLen)
	}
	if l.Columns < 1 || l.Columns > MaxColumns {
		return Invalid("columns", "range", "1-48", "columns must be between 1 and %d", MaxColumns)
	}
	if len(l.Items) > MaxItems {
		return Invalid("items", "max", fmt.Sprint(MaxItems), "a layout has at most %d items", MaxItems)
	}
	ids := make([]string, 0, len(l.Items))
	for id := range l.Items {
		ids = append(ids, id)
	}
	sort.Strings(ids) // the same input always reports the same first error
	for _, id := range ids {
		it := l.Items[id]
		f := "items." + id
		switch {
		case id == "" || len(id) > 64 || !ValidText(id):
			return Invalid("items", "key", "", "item keys must be widget ids")
		case it.X < 0:
			return Invalid(f+".x", "min", "0", "%s.x must be at least 0", f)
		case it.W < 1:
			return Invalid(f+".w", "min", "1", "%s.w must be at least 1", f)
		case it.X+it.W > l.Columns:
			// Report the bound on w given x, the usual thing a client got wrong.
			max := l.Columns - it.X
			if max < 1 {
				return Invalid(f+".x", "max", fmt.Sprint(l.Columns-1), "%s.x must be at most %d", f, l.Columns-1)
			}
			return Invalid(f+".w", "max", fmt.Sprint(max), "%s.w must be at most %d", f, max)
		case it.Y < 0:
			return Invalid(f+".y", "min", "0", "%s.y must be at least 0", f)
		case it.Y > MaxY:
			return Invalid(f+".y", "max", fmt.Sprint(MaxY), "%s.y must be at most %d", f, MaxY)
		case it.H < 1:
			return Invalid(f+".h", "min", "1", "%s.h must be at least 1", f)
		case it.H > MaxH:
			return Invalid(f+".h", "max", fmt.Sprint(MaxH), "%s.h must be at most %d", f, MaxH)
		}
	}
	return validateSettings(l.Settings)
}

func validateSettings(s Settings) error {
	size := 2
	for k, v := range s {
		size += len(k) + len(v) + 4
	}
	for k, v := range s {
		if !ValidText(k) || !ValidJSONText(v) {
			return Invalid("settings", "text", "", "settings keys and values must be valid UTF-8 without the NUL character")
		}
	}
	if size > MaxSettingsSize {
		return &Error{Code: CodeTooLarge, Message: fmt.Sprintf("settings must be at most %d bytes", MaxSettingsSize),
			Details: []FieldError{{Field: "settings", Rule: "max", Param: fmt.Sprint(MaxSettingsSize)}}}
	}
	return nil
}

// ValidateWidget checks a widget definition against the contract. Whether the source
// kind is known, and its address allowed, is for the SourceChecker.
func ValidateWidget(w Widget) error {
	if !typePattern.MatchString(w.Type) {
		return Invalid("type", "pattern", "[a-z0-9._-]{1,32}", "type must be 1 to 32 characters of a-z, 0-9, '.', '_' or '-'")
	}
	if err := checkText("title", w.Title); err != nil {
		return err
	}
	if utf8.RuneCountInString(w.Title) > MaxTitleLen {
		return Invalid("title", "max", fmt.Sprint(MaxTitleLen), "title must be at most %d characters", MaxTitleLen)
	}
	src := w.Source
	if src.Kind == "" {
		return Invalid("source.kind", "required", "", "source.kind is required")
	}
	if err := checkText("source.kind", src.Kind); err != nil {
		return err
	}
	if src.RefreshSeconds < 1 || src.RefreshSeconds > MaxRefreshSeconds {
		return Invalid("source.refreshSeconds", "range", "1-86400", "source.refreshSeconds must be between 1 and %d", MaxRefreshSeconds)
	}
	if src.TTLSeconds < 1 || src.TTLSeconds > MaxTTLSeconds {
		return Invalid("source.ttlSeconds", "range", "1-2592000", "source.ttlSeconds must be between 1 and %d", MaxTTLSeconds)
	}
	if err := checkText("source.url", src.URL); err != nil {
		return err
	}
	if len(src.Data) > 0 && !ValidJSONText(src.Data) {
		return Invalid("source.data", "text", "", "source.data must be valid UTF-8 without the NUL character")
	}
	if len(src.Data) > MaxDataSize {
		return &Error{Code: CodeTooLarge, Message: fmt.Sprintf("source.data must be at most %d bytes", MaxDataSize),
			Details: []FieldError{{Field: "source.data", Rule: "max", Param: fmt.Sprint(MaxDataSize)}}}
	}
	if src.URL != "" {
		u, err := url.Parse(src.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Invalid("source.url", "url", "", "source.url must be an http or https URL")
		}
	}
	return validateSettings(w.Settings)
}

// SourceChecker decides whether a widget source is acceptable: a known kind, with what
// that kind needs (a URL that passes the SSRF policy, say). It returns a
// validation_failed *Error when not. It may do I/O (resolve a host) and must give up
// when ctx is done. source.Registry is the server's.
type SourceChecker interface {
	CheckSource(ctx context.Context, src Source) error
}

// BasicSources accepts the kinds that need no fetching: static (data in the source) and
// push (data written through the API).
type BasicSources struct{}

// CheckSource implements SourceChecker.
func (BasicSources) CheckSource(_ context.Context, src Source) error {
	switch src.Kind {
	case "static":
		if len(src.Data) == 0 {
			return Invalid("source.data", "required", "", "a static source needs source.data")
		}
	case "push":
	default:
		return Invalid("source.kind", "oneof", "static push", "source.kind %q is not a known kind", src.Kind)
	}
	return nil
}
