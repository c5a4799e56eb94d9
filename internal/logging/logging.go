// Package logging sets up kfleet's zerolog loggers and adapts them to the
// Temporal SDK, so workflow logs (workflow.GetLogger) and everything else
// come out as the same JSON lines.
package logging

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	tlog "go.temporal.io/sdk/log"
)

// New returns a JSON logger on w, or a human console logger when pretty.
func New(w io.Writer, pretty bool, level zerolog.Level) zerolog.Logger {
	if pretty {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// Default is a JSON logger on stderr at info level.
func Default() zerolog.Logger { return New(os.Stderr, false, zerolog.InfoLevel) }

// Temporal adapts a zerolog logger to the SDK's logger interface.
type Temporal struct{ Log zerolog.Logger }

var _ tlog.Logger = Temporal{}
var _ tlog.WithLogger = Temporal{}

func (t Temporal) Debug(msg string, kv ...any) { t.event(t.Log.Debug(), kv).Msg(msg) }
func (t Temporal) Info(msg string, kv ...any)  { t.event(t.Log.Info(), kv).Msg(msg) }
func (t Temporal) Warn(msg string, kv ...any)  { t.event(t.Log.Warn(), kv).Msg(msg) }
func (t Temporal) Error(msg string, kv ...any) { t.event(t.Log.Error(), kv).Msg(msg) }

// With returns a logger that adds kv to every line.
func (t Temporal) With(kv ...any) tlog.Logger {
	ctx := t.Log.With()
	for i := 0; i+1 < len(kv); i += 2 {
		ctx = ctx.Interface(key(kv[i]), kv[i+1])
	}
	return Temporal{Log: ctx.Logger()}
}

func (Temporal) event(e *zerolog.Event, kv []any) *zerolog.Event {
	for i := 0; i+1 < len(kv); i += 2 {
		if err, ok := kv[i+1].(error); ok {
			e = e.AnErr(key(kv[i]), err)
			continue
		}
		e = e.Interface(key(kv[i]), kv[i+1])
	}
	return e
}

func key(k any) string {
	if s, ok := k.(string); ok {
		return s
	}
	return fmt.Sprint(k)
}
