package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.temporal.io/api/serviceerror"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/schedules"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int // 0: no exit code of its own (1)
	}{
		{"unknown cluster", fmt.Errorf("cluster x: %w", fleet.ErrUnknownCluster), exitBadInput},
		{"refused", fmt.Errorf("cluster x: %w: cool-down", fleet.ErrRefused), exitBadInput},
		{"nothing waits", fmt.Errorf("cluster x: %w", entity.ErrNothingWaiting), exitBadInput},
		{"bad schedule", fmt.Errorf("s: %w", schedules.ErrBadSchedule), exitBadInput},
		{"unknown schedule", fmt.Errorf("s: %w", schedules.ErrUnknownSchedule), exitBadInput},
		{"unknown approval", fmt.Errorf("approval a: %w", serviceerror.NewNotFound("workflow not found")), exitBadInput},
		{"Temporal went away", fmt.Errorf("list: %w", serviceerror.NewUnavailable("connection refused")), exitUnreachable},
		{"kept", exitError{exitUnreachable, errors.New("cannot reach Temporal")}, exitUnreachable},
		{"operation failed", errors.New("cluster x: rolling-restart r-1 failed"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(tc.err)
			assert.ErrorIs(t, err, tc.err, "the message is kept")
			var ee exitError
			if tc.code == 0 {
				assert.False(t, errors.As(err, &ee))
				return
			}
			if assert.True(t, errors.As(err, &ee)) {
				assert.Equal(t, tc.code, ee.code)
			}
		})
	}
	assert.NoError(t, classify(nil))
}

func TestParseInterval(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", 0, false},
		{"1h", time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"0d", 0, true},
		{"1.5d", 0, true},
		{"-1h", 0, true},
		{"soon", 0, true},
	} {
		got, err := parseInterval("--every", tc.in)
		if tc.bad {
			assert.Error(t, err, tc.in)
			continue
		}
		assert.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func TestRoughly(t *testing.T) {
	for d, want := range map[time.Duration]string{
		4 * time.Second:                 "4s",
		12*time.Minute + 20*time.Second: "12m",
		3*time.Hour + 10*time.Minute:    "3h10m",
		51 * time.Hour:                  "2d3h",
	} {
		assert.Equal(t, want, entity.Roughly(d), d)
	}
}
