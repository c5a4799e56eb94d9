package schedules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
)

// When a schedule fires: cron expressions and intervals, written as
// Temporal reads them, and read back for humans.

// describeSpec says when a schedule fires. The server keeps cron
// expressions as calendars, so they are written back in cron's order
// (minute hour day-of-month month day-of-week).
func describeSpec(sp client.ScheduleSpec) string {
	var parts []string
	for _, iv := range sp.Intervals {
		s := "every " + shortDuration(iv.Every)
		if iv.Offset > 0 {
			s += " +" + shortDuration(iv.Offset)
		}
		parts = append(parts, s)
	}
	for _, cal := range sp.Calendars {
		parts = append(parts, "cron "+strings.Join([]string{
			calendarField(cal.Minute, 0, 59, nil),
			calendarField(cal.Hour, 0, 23, nil),
			calendarField(cal.DayOfMonth, 1, 31, nil),
			calendarField(cal.Month, 1, 12, nil),
			calendarField(cal.DayOfWeek, 0, 6, dayNames),
		}, " "))
	}
	return strings.Join(parts, "; ")
}

var dayNames = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}

func calendarField(rs []client.ScheduleRange, lo, hi int, names []string) string {
	if len(rs) == 0 {
		return strconv.Itoa(lo)
	}
	name := func(v int) string {
		if names != nil && v >= 0 && v < len(names) {
			return names[v]
		}
		return strconv.Itoa(v)
	}
	items := make([]string, 0, len(rs))
	for _, r := range rs {
		end := max(r.End, r.Start)
		step := max(r.Step, 1)
		var s string
		switch {
		case r.Start == lo && end == hi:
			s = "*"
		case end == r.Start:
			s = name(r.Start)
		default:
			s = name(r.Start) + "-" + name(end)
		}
		if step > 1 {
			s += "/" + strconv.Itoa(step)
		}
		items = append(items, s)
	}
	return strings.Join(items, ",")
}

// shortDuration prints 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// cronShorthands are the @-forms Temporal accepts that make sense for a
// maintenance window.
var cronShorthands = []string{"@hourly", "@daily", "@weekly", "@monthly", "@yearly"}

// cronFields are a 5-field expression's fields, in order.
var cronFields = []struct {
	name   string
	lo, hi int
	names  []string
}{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day-of-month", 1, 31, nil},
	{"month", 1, 12, []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{"day-of-week", 0, 6, dayNames},
}

// validateCron checks a 5-field cron expression the way Temporal reads it
// (each field a list of *, N, N-M, with an optional /STEP; month and day
// names allowed), so a typo is refused with the field it is in rather
// than by the server.
func validateCron(expr string) error {
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "@") {
		if slices.Contains(cronShorthands, expr) {
			return nil
		}
		return fmt.Errorf("cron %q: want one of %s or 5 fields", expr, strings.Join(cronShorthands, ", "))
	}
	fields := strings.Fields(expr)
	if len(fields) != len(cronFields) {
		return fmt.Errorf(`cron %q: want 5 fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * SUN"`, expr)
	}
	for i, f := range fields {
		spec := cronFields[i]
		value := func(s string) (int, error) {
			if j := slices.Index(spec.names, strings.ToUpper(s)); j >= 0 {
				return j + spec.lo, nil
			}
			v, err := strconv.Atoi(s)
			if err != nil || v < spec.lo || v > spec.hi {
				return 0, fmt.Errorf("cron %q: %s %q: want %d-%d", expr, spec.name, s, spec.lo, spec.hi)
			}
			return v, nil
		}
		for item := range strings.SplitSeq(f, ",") {
			rng, step, hasStep := strings.Cut(item, "/")
			if hasStep {
				if n, err := strconv.Atoi(step); err != nil || n < 1 {
					return fmt.Errorf("cron %q: %s step %q: want a positive number", expr, spec.name, step)
				}
			}
			if rng == "*" {
				continue
			}
			from, to, isRange := strings.Cut(rng, "-")
			a, err := value(from)
			if err != nil {
				return err
			}
			if !isRange {
				continue
			}
			b, err := value(to)
			if err != nil {
				return err
			}
			if b < a {
				return fmt.Errorf("cron %q: %s range %q ends before it starts", expr, spec.name, rng)
			}
		}
	}
	return nil
}
