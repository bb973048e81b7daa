package redact

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler wraps h so that every record's message and attributes pass through r first: string
// values, errors, fmt.Stringers and string slices, in groups too. Other values (numbers, times,
// structs) are passed as they are; no secret is logged as one.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	if r.Empty() {
		return h
	}
	return &handler{next: h, r: r}
}

type handler struct {
	next slog.Handler
	r    *Redactor
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.r.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.r.attr(a)
	}
	return &handler{next: h.next.WithAttrs(clean), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), r: h.r}
}

// attr returns a with its value redacted; LogValuers are resolved first so their output is seen.
func (r *Redactor) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.String(v.String()))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]slog.Attr, len(group))
		for i, g := range group {
			clean[i] = r.attr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(clean...)}
	case slog.KindAny:
		return slog.Attr{Key: a.Key, Value: r.anyValue(v)}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (r *Redactor) anyValue(v slog.Value) slog.Value {
	switch x := v.Any().(type) {
	case error:
		// Handlers print an error as its message; a string of the clean message prints the same.
		return slog.StringValue(r.String(x.Error()))
	case fmt.Stringer:
		s := x.String()
		if clean := r.String(s); clean != s {
			return slog.StringValue(clean)
		}
	case []string:
		clean := make([]string, len(x))
		changed := false
		for i, s := range x {
			clean[i] = r.String(s)
			changed = changed || clean[i] != s
		}
		if changed {
			return slog.AnyValue(clean)
		}
	}
	return v
}
