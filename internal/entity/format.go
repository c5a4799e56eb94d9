package entity

import (
	"fmt"
	"time"
)

// Ago says how long ago t was, for humans.
func Ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "in " + Roughly(-d)
	case d < time.Second:
		return "just now"
	}
	return Roughly(d) + " ago"
}

// Roughly rounds d to what a person reads: 4s, 12m, 3h10m, 2d3h.
func Roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute)/time.Minute))
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// Clock prints a time in the reader's zone.
func Clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// Suffix is before+s+after, or "" when s is empty.
func Suffix(before, s, after string) string {
	if s == "" {
		return ""
	}
	return before + s + after
}

// BrokersSuffix names the brokers an operation concerns, after a comma.
func BrokersSuffix(brokers []int32) string {
	switch len(brokers) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(", broker %d", brokers[0])
	}
	return fmt.Sprintf(", brokers %v", brokers)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
