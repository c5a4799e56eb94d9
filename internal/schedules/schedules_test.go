package schedules

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/workflows"
)

func TestScheduleRequestValidate(t *testing.T) {
	window := func(edit func(*ScheduleRequest)) ScheduleRequest {
		r := ScheduleRequest{Cluster: "local-a", Action: "restart", Cron: "0 3 * * SUN", CreatedBy: "alice"}
		edit(&r)
		return r
	}
	for _, tc := range []struct {
		name string
		req  ScheduleRequest
		want string // "" : valid
	}{
		{"weekly restart", window(func(*ScheduleRequest) {}), ""},
		{"daily cleaner check by interval", window(func(r *ScheduleRequest) {
			r.Action, r.Cron, r.Every, r.Offset = "cleaner-check", "", 24*time.Hour, 3*time.Hour
		}), ""},
		{"shorthand", window(func(r *ScheduleRequest) { r.Cron = "@weekly" }), ""},
		{"names, lists, ranges and steps", window(func(r *ScheduleRequest) { r.Cron = "*/15 1-5/2 1,15 JAN-MAR mon-fri" }), ""},
		{"time zone", window(func(r *ScheduleRequest) { r.TimeZone = "Europe/Paris" }), ""},
		{"batch for a restart", window(func(r *ScheduleRequest) { r.Params = batch(3) }), ""},
		{"sweep defaults to hourly", ScheduleRequest{Sweep: true, CreatedBy: "dev"}, ""},

		{"no spec", window(func(r *ScheduleRequest) { r.Cron = "" }), "a cron expression"},
		{"cron and interval", window(func(r *ScheduleRequest) { r.Every = time.Hour }), "not both"},
		{"4 fields", window(func(r *ScheduleRequest) { r.Cron = "0 3 * *" }), "want 5 fields"},
		{"hour out of range", window(func(r *ScheduleRequest) { r.Cron = "0 24 * * *" }), `hour "24": want 0-23`},
		{"bad day name", window(func(r *ScheduleRequest) { r.Cron = "0 3 * * SUNDAY" }), "day-of-week"},
		{"backwards range", window(func(r *ScheduleRequest) { r.Cron = "0 5-3 * * *" }), "ends before it starts"},
		{"zero step", window(func(r *ScheduleRequest) { r.Cron = "*/0 * * * *" }), "step"},
		{"unknown shorthand", window(func(r *ScheduleRequest) { r.Cron = "@reboot" }), "@hourly"},
		{"interval too short", window(func(r *ScheduleRequest) { r.Cron, r.Every = "", time.Second }), "want at least 1m"},
		{"offset past the interval", window(func(r *ScheduleRequest) { r.Cron, r.Every, r.Offset = "", time.Hour, time.Hour }), "offset 1h0m0s"},
		{"offset with cron", window(func(r *ScheduleRequest) { r.Offset = time.Hour }), "offset goes with an interval"},
		{"unknown zone", window(func(r *ScheduleRequest) { r.TimeZone = "Mars/Olympus" }), "time zone"},
		{"zone with an interval", window(func(r *ScheduleRequest) { r.Cron, r.Every, r.TimeZone = "", 24*time.Hour, "Europe/Paris" }), "goes with a cron expression"},
		{"upgrade is no window", window(func(r *ScheduleRequest) { r.Action = "upgrade" }), "want one of restart, cleaner-check"},
		{"malformed cluster", window(func(r *ScheduleRequest) { r.Cluster = "Local_A" }), "cluster \"Local_A\""},
		{"batch for a cleaner check", window(func(r *ScheduleRequest) { r.Action, r.Params = "cleaner-check", batch(2) }), "unknown field \"maxBatch\""},
		{"negative batch", window(func(r *ScheduleRequest) { r.Params = batch(-1) }), "maxBatch -1: must not be negative"},
		{"nobody", window(func(r *ScheduleRequest) { r.CreatedBy = "" }), "createdBy is required"},
		{"sweep of a cluster", ScheduleRequest{Sweep: true, Cluster: "local-a", CreatedBy: "dev"}, "takes no cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrBadSchedule)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestScheduleRequestOptions(t *testing.T) {
	opts := ScheduleRequest{Cluster: "local-a", Action: "restart", Params: batch(2), Cron: "0 3 * * SUN", CreatedBy: "alice"}.withDefaults().options()
	assert.Equal(t, "schedule/local-a/restart", opts.ID)
	assert.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, opts.Overlap)
	assert.Equal(t, 10*time.Minute, opts.CatchupWindow)
	assert.Equal(t, []string{"0 3 * * SUN"}, opts.Spec.CronExpressions)
	assert.Equal(t, "UTC", opts.Spec.TimeZoneName)
	assert.Contains(t, opts.Note, "alice")
	a, ok := opts.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	assert.Equal(t, "cluster/local-a/scheduled/restart", a.ID)
	assert.Equal(t, workflows.TaskQueue, a.TaskQueue)
	assert.Equal(t, []any{activities.Action{Verb: "restart", Cluster: "local-a", Params: batch(2), RequestedBy: "schedule/local-a/restart"}}, a.Args)
	cluster, _ := a.TypedSearchAttributes.GetKeyword(workflows.AttrClusterID)
	op, _ := a.TypedSearchAttributes.GetKeyword(workflows.AttrOperation)
	assert.Equal(t, "local-a", cluster)
	assert.Equal(t, "scheduled-restart", op)

	sweep := ScheduleRequest{Sweep: true, CreatedBy: "dev"}.withDefaults().options()
	assert.Equal(t, workflows.FleetSweepScheduleID, sweep.ID)
	assert.Equal(t, []client.ScheduleIntervalSpec{{Every: time.Hour}}, sweep.Spec.Intervals)
	sa, ok := sweep.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	assert.Equal(t, []any{workflows.FleetSweepInput{RequestedBy: workflows.FleetSweepScheduleID}}, sa.Args)
}

func TestDescribeSpec(t *testing.T) {
	all := func(lo, hi int) []client.ScheduleRange { return []client.ScheduleRange{{Start: lo, End: hi}} }
	one := func(v int) []client.ScheduleRange { return []client.ScheduleRange{{Start: v}} }
	for _, tc := range []struct {
		name string
		spec client.ScheduleSpec
		want string
	}{
		{"hourly", client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}}, "every 1h"},
		{"daily at 3", client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 24 * time.Hour, Offset: 3*time.Hour + 30*time.Minute}}}, "every 24h +3h30m"},
		// What the server keeps of "0 3 * * SUN".
		{"weekly cron", client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
			Second: one(0), Minute: one(0), Hour: one(3), DayOfMonth: all(1, 31), Month: all(1, 12), DayOfWeek: one(0),
		}}}, "cron 0 3 * * SUN"},
		{"steps and lists", client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
			Minute: []client.ScheduleRange{{Start: 0, End: 59, Step: 15}}, Hour: []client.ScheduleRange{{Start: 1}, {Start: 13}},
			DayOfMonth: all(1, 31), Month: all(1, 12), DayOfWeek: all(1, 5),
		}}}, "cron */15 1,13 * * MON-FRI"},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, describeSpec(tc.spec)) })
	}
}

func TestScheduleID(t *testing.T) {
	for in, want := range map[string]string{
		"fleet-sweep":                         "schedule/fleet-sweep",
		"local-a/restart":                     "schedule/local-a/restart",
		"schedule/local-a/restart":            "schedule/local-a/restart",
		workflows.FleetSweepScheduleID:        workflows.FleetSweepScheduleID,
		workflows.ClusterScheduleID("b", "x"): "schedule/b/x",
	} {
		assert.Equal(t, want, ScheduleID(in), in)
	}
}

// batch is a restart's parameters with a batch size.
func batch(n int) json.RawMessage {
	raw, _ := json.Marshal(workflows.RestartParams{MaxBatch: n})
	return raw
}
