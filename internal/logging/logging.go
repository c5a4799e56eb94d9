// Package logging sets up kfleet's zerolog loggers and adapts them to the
// Temporal SDK, so workflow logs (workflow.GetLogger) and everything else
// come out as the same JSON lines.
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
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

// The fields every kfleet log line names its subject with, as the
// activities write them with zerolog directly.
const (
	FieldCluster    = "cluster"
	FieldBroker     = "broker"
	FieldWorkflowID = "workflow_id"
	FieldRunID      = "run_id"
	FieldActivity   = "activity"
)

// fieldName renames the keys workflows (Cluster, Broker) and the SDK
// (WorkflowID, RunID, ActivityType) log with to kfleet's fields, so one
// query finds a cluster's or a broker's lines whoever wrote them. Other
// keys are kept as they are.
func fieldName(key string) string {
	switch key {
	case "Cluster":
		return FieldCluster
	case "Broker":
		return FieldBroker
	case "WorkflowID":
		return FieldWorkflowID
	case "RunID":
		return FieldRunID
	case "ActivityType":
		return FieldActivity
	}
	return key
}

// ClusterOfWorkflow is the cluster a kfleet workflow ID concerns:
// "local-a" for cluster/local-a and for any workflow under it
// (cluster/local-a/roll/…); empty for other IDs. It mirrors
// workflows.ClusterWorkflowID, which this package cannot import.
func ClusterOfWorkflow(id string) string {
	rest, ok := strings.CutPrefix(id, "cluster/")
	if !ok {
		return ""
	}
	cluster, _, _ := strings.Cut(rest, "/")
	return cluster
}

// Temporal adapts a zerolog logger to the SDK's logger interface. Keys are
// renamed to kfleet's fields (FieldCluster …), and every line of a
// workflow or activity carries FieldCluster: the one it was logged with,
// else the one its logger was given (With), else the one its workflow ID
// names. The SDK's own lines about a workflow (a workflow task, a panic)
// come without a Cluster, hence the last.
type Temporal struct {
	Log zerolog.Logger
	// cluster is what With learnt; added to each line at write time, and
	// only when the line has no Cluster of its own, so it never appears
	// twice.
	cluster string
}

var _ tlog.Logger = Temporal{}
var _ tlog.WithLogger = Temporal{}

func (t Temporal) Debug(msg string, kv ...any) { t.event(t.Log.Debug(), kv).Msg(msg) }
func (t Temporal) Info(msg string, kv ...any)  { t.event(t.Log.Info(), kv).Msg(msg) }
func (t Temporal) Warn(msg string, kv ...any)  { t.event(t.Log.Warn(), kv).Msg(msg) }
func (t Temporal) Error(msg string, kv ...any) { t.event(t.Log.Error(), kv).Msg(msg) }

// With returns a logger that adds kv to every line.
func (t Temporal) With(kv ...any) tlog.Logger {
	list, cluster, _ := fields(kv)
	if cluster == "" {
		cluster = t.cluster
	}
	return Temporal{Log: t.Log.With().Fields(list).Logger(), cluster: cluster}
}

func (t Temporal) event(e *zerolog.Event, kv []any) *zerolog.Event {
	if !e.Enabled() {
		return e // spare the conversion of a debug line nobody reads
	}
	list, cluster, explicit := fields(kv)
	if !explicit && t.cluster != "" {
		cluster = t.cluster
	}
	if cluster != "" {
		e = e.Str(FieldCluster, cluster)
	}
	return e.Fields(list)
}

// fields renames kv's keys into a zerolog field list, and reports the
// cluster kv names: explicitly (Cluster, whose pair is left out of the
// list for the caller to add once) or through a kfleet workflow ID.
func fields(kv []any) (list []any, cluster string, explicit bool) {
	list = make([]any, 0, len(kv)+1)
	var fromID string
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		if i+1 == len(kv) {
			// A key without a value is the caller's mistake: show it
			// rather than lose it.
			list = append(list, key, "(missing value)")
			break
		}
		v := kv[i+1]
		switch key {
		case "Cluster":
			cluster, explicit = fmt.Sprint(v), true
			continue
		case "WorkflowID":
			fromID = ClusterOfWorkflow(fmt.Sprint(v))
		}
		list = append(list, fieldName(key), v)
	}
	if !explicit {
		cluster = fromID
	}
	return list, cluster, explicit
}
