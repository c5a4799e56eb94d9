package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/schedules"
	"github.com/kfleet/kfleet/workflows"
)

func newScheduleCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Maintenance windows and the fleet sweep (Temporal Schedules): create, list, pause, unpause, trigger, delete",
		Long: `Maintenance windows and the fleet sweep are Temporal Schedules, kept by the
Temporal server (not cron in the worker). A cluster's window
(schedule/<cluster>/<action>) submits a rolling restart or a cleaner check
to the cluster's entity, which queues it under its admission rules like any
request; the fleet sweep (schedule/fleet-sweep) asks every cluster for a
health check (disk, cleaner, heap). Every schedule skips a run while the
previous one still runs, and a run missed by more than 10 minutes (Temporal
down) is skipped, not fired late. IDs may leave out the schedule/ prefix.`,
	}
	cmd.AddCommand(newScheduleCreateCommand(g), newScheduleListCommand(g),
		newSchedulePauseCommand(g, true), newSchedulePauseCommand(g, false),
		newScheduleTriggerCommand(g), newScheduleDeleteCommand(g))
	return cmd
}

func newScheduleCreateCommand(g *globalFlags) *cobra.Command {
	var (
		req       schedules.ScheduleRequest
		every, at string
		batch     int
		createdBy string
	)
	cmd := &cobra.Command{
		Use:   "create (--cluster ID --action restart|cleaner-check | --sweep) (--cron EXPR | --every DURATION [--at OFFSET])",
		Short: "Create (or update) a cluster's maintenance window or the fleet sweep",
		Long: `Creates the schedule, or updates it when it exists (its paused state is
kept). A window for a cluster kfleet does not know is refused (exit 2): it
would fail at every run.

  starter schedule create --cluster local-a --action restart --cron "0 3 * * SUN"
  starter schedule create --cluster local-a --action cleaner-check --every 24h --at 2h
  starter schedule create --sweep --every 1h

--cron takes 5 fields (minute hour day-of-month month day-of-week, names
allowed: "0 3 * * SUN") or @hourly, @daily, @weekly, @monthly, read in
--timezone. --every takes a Go duration or days (7d); intervals count from
the Unix epoch, so --every 24h --at 3h is daily at 03:00 UTC (prefer --cron
for weekly windows). The sweep defaults to --every 1h.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if req.Every, err = parseInterval("--every", every); err != nil {
				return exitError{exitBadInput, err}
			}
			if req.Offset, err = parseInterval("--at", at); err != nil {
				return exitError{exitBadInput, err}
			}
			if cmd.Flags().Changed("batch") {
				if batch < 1 {
					return exitError{exitBadInput, fmt.Errorf("--batch %d: want 1 (one broker at a time) up to the cluster's broker count", batch)}
				}
				if batch > 1 { // 1 is the default: one broker at a time
					req.Params, _ = json.Marshal(workflows.RestartParams{MaxBatch: batch})
				}
			}
			if !req.Sweep {
				if err := checkCluster(req.Cluster); err != nil {
					return err
				}
			}
			if !req.Sweep && req.Action == "" {
				return exitError{exitBadInput, errors.New("--action restart|cleaner-check (with --cluster) or --sweep is required")}
			}
			req.CreatedBy = createdBy
			if err := req.Validate(); err != nil {
				return exitError{exitBadInput, err}
			}
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				s, created, err := schedules.CreateSchedule(ctx, c, req)
				if err != nil {
					return err
				}
				verb := "updated"
				if created {
					verb = "created"
				}
				return g.emit(cmd, scheduleAnswer{Schedule: s, Created: created}, func(out io.Writer) {
					fmt.Fprintf(out, "%s schedule %s: %s, %s\n", verb, s.ID, describeScheduleAction(s), describeWhen(s))
					fmt.Fprintf(out, "  overlap %s, catch-up window %s%s\n", s.Overlap, entity.Roughly(s.CatchupWindow), pausedSuffix(s))
					if len(s.NextRuns) > 0 {
						fmt.Fprintf(out, "  next run %s (%s)\n", entity.Clock(s.NextRuns[0]), entity.Ago(s.NextRuns[0]))
					}
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Cluster, "cluster", "", "the cluster of a maintenance window")
	f.StringVar(&req.Action, "action", "", "what the window does: restart or cleaner-check")
	f.BoolVar(&req.Sweep, "sweep", false, "the fleet-wide sweep (a health check of every cluster) instead of a window")
	f.StringVar(&req.Cron, "cron", "", `when, as cron: "0 3 * * SUN" (minute hour day-of-month month day-of-week)`)
	f.StringVar(&every, "every", "", "when, as an interval: 1h, 24h, 7d (default for --sweep: 1h)")
	f.StringVar(&at, "at", "", "offset into --every, from the Unix epoch: --every 24h --at 3h is 03:00 UTC daily")
	f.StringVar(&req.TimeZone, "timezone", "UTC", "IANA time zone --cron is read in, e.g. Europe/Paris")
	f.IntVar(&batch, "batch", 1, "a restart window's batch: brokers that share no partition restart together (1..broker count)")
	f.StringVar(&createdBy, "by", defaultRequester(), "who creates it (recorded in the schedule's note)")
	return cmd
}

// scheduleAnswer is schedule create's --json answer.
type scheduleAnswer struct {
	schedules.Schedule
	Created bool `json:"created"`
}

// parseInterval reads a Go duration, or whole days (7d); "" is zero.
func parseInterval(flag, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s %q: want a duration like 1h, 24h or 7d", flag, s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a duration like 1h, 24h or 7d", flag, s)
	}
	return d, nil
}

func newScheduleListCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List kfleet's schedules: action, when, paused, next run, last run and its result",
		Long: `Lists kfleet's schedules (IDs under schedule/). Listing goes through
Temporal's visibility: a schedule created a moment ago may take a second to
show.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				ss, err := schedules.ListSchedules(ctx, c)
				if err != nil {
					return err
				}
				if ss == nil {
					ss = []schedules.Schedule{}
				}
				return g.emit(cmd, ss, func(out io.Writer) { printSchedules(out, ss) })
			})
		},
	}
}

func printSchedules(w io.Writer, ss []schedules.Schedule) {
	if len(ss) == 0 {
		fmt.Fprintln(w, "no schedule (starter schedule create --help)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULE\tACTION\tWHEN\tPAUSED\tNEXT RUN\tLAST RUN")
	for _, s := range ss {
		paused := "no"
		if s.Paused {
			paused = "PAUSED" + entity.Suffix(": ", s.Note, "")
		}
		next := "-"
		if len(s.NextRuns) > 0 {
			next = fmt.Sprintf("%s (%s)", entity.Clock(s.NextRuns[0]), entity.Ago(s.NextRuns[0]))
		}
		last := "never"
		if r := s.LastRun; r != nil {
			last = fmt.Sprintf("%s %s%s", entity.Clock(r.StartedAt), r.Status, entity.Suffix(": ", r.Result, ""))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, describeScheduleAction(s), describeWhen(s), paused, next, last)
	}
	tw.Flush()
}

func describeScheduleAction(s schedules.Schedule) string {
	switch {
	case s.Cluster == "":
		return s.Action
	case len(s.Params) > 0 && string(s.Params) != "{}":
		return fmt.Sprintf("%s of %s %s", s.Action, s.Cluster, s.Params)
	}
	return fmt.Sprintf("%s of %s", s.Action, s.Cluster)
}

func describeWhen(s schedules.Schedule) string {
	if s.TimeZone != "" && s.TimeZone != "UTC" {
		return s.Spec + " " + s.TimeZone
	}
	return s.Spec
}

func pausedSuffix(s schedules.Schedule) string {
	if !s.Paused {
		return ""
	}
	return ", PAUSED" + entity.Suffix(": ", s.Note, "")
}

// newSchedulePauseCommand is schedule pause (pause) or unpause.
func newSchedulePauseCommand(g *globalFlags, pause bool) *cobra.Command {
	var note, by string
	name, short := "unpause", "Let a paused schedule fire again from its next time (missed runs are not caught up)"
	if pause {
		name, short = "pause", "Stop a schedule from firing until unpause (a run already started goes on)"
	}
	cmd := &cobra.Command{
		Use:   name + " SCHEDULE_ID",
		Short: short,
		Long:  short + ". An unknown schedule exits 2.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				id := schedules.ScheduleID(args[0])
				text := fmt.Sprintf("%sd by %s%s", name, by, entity.Suffix(": ", note, ""))
				var err error
				if pause {
					err = schedules.PauseSchedule(ctx, c, id, text)
				} else {
					err = schedules.UnpauseSchedule(ctx, c, id, text)
				}
				if err != nil {
					return err
				}
				return g.emit(cmd, map[string]any{"id": id, "paused": pause, "note": text}, func(out io.Writer) {
					fmt.Fprintf(out, "%s: %s\n", id, text)
				})
			})
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why (shown in schedule list)")
	cmd.Flags().StringVar(&by, "by", defaultRequester(), "who (recorded in the note)")
	return cmd
}

func newScheduleTriggerCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "trigger SCHEDULE_ID",
		Short: "Run a schedule's action now (even while paused), under its overlap policy",
		Long: `Runs the schedule's action once, now, and prints the workflow it started.
While the previous run still runs, the trigger is skipped (exit 2). An
unknown schedule exits 2.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				id := schedules.ScheduleID(args[0])
				tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				run, err := schedules.TriggerSchedule(tctx, c, id)
				if err != nil {
					return err
				}
				return g.emit(cmd, run, func(out io.Writer) {
					fmt.Fprintf(out, "triggered %s: started %s (%s)\n", id, run.WorkflowID, run.Status)
				})
			})
		},
	}
}

func newScheduleDeleteCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete SCHEDULE_ID",
		Short: "Delete a schedule (what it already started is not touched)",
		Long: `Deletes the schedule. Workflows it started, and the operations they asked
the cluster's entity for, go on: cancel those with starter cancel. An
unknown schedule exits 2.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				id := schedules.ScheduleID(args[0])
				if err := schedules.DeleteSchedule(ctx, c, id); err != nil {
					return err
				}
				return g.emit(cmd, map[string]any{"id": id, "deleted": true}, func(out io.Writer) {
					fmt.Fprintf(out, "deleted %s\n", id)
				})
			})
		},
	}
}
