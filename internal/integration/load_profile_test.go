package integration_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/loadprofile"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/workflows"
)

// fleetOffline takes a local-fleet broker offline with a crash (no
// controlled shutdown: kfleet must sense it and recover it).
type fleetOffline struct{ f *localfleet.Fleet }

func (o fleetOffline) TakeOffline(ctx context.Context, cluster string, broker int32) error {
	return o.f.Crash(ctx, cluster, broker, "load-profile")
}

func (o fleetOffline) Running(_ context.Context, cluster string, broker int32) (bool, error) {
	st, err := o.f.BrokerState(cluster, broker)
	return st == localfleet.StateRunning, err
}

// fleetQuotas counts the responses the fleet's brokers throttled by user.
type fleetQuotas struct{ f *localfleet.Fleet }

func (q fleetQuotas) Throttled(_ context.Context, cluster string) (map[string]int64, error) {
	stats, err := q.f.QuotaStats(cluster)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(stats))
	for user, s := range stats {
		out[user] = s.ProduceThrottled + s.FetchThrottled
	}
	return out, nil
}

// logWriter writes the harness's progress lines to the test's log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// loadStack is a stack with one SASL/ACL cluster of brokers brokers that
// heals itself, with disks big enough for the harness's tenants; the
// harness's Runner on it, ready to run.
func loadStack(t testing.TB, cluster string, brokers int, volumeGiB int32) (*devstack.Stack, *loadprofile.Runner) {
	t.Helper()
	stack := startStackWith(t, fastFleet(secured(localfleet.ClusterConfig{ID: cluster, Brokers: brokers,
		Volume: localfleet.VolumeConfig{SizeGiB: volumeGiB}}, "load-superuser-secret")), func(o *devstack.StackOptions) {
		o.Health, o.NotifyOut = selfHealingPolicy, io.Discard
		o.Secrets = "file:" + t.TempDir()
	})
	return stack, &loadprofile.Runner{
		Temporal: stack.Client, Cluster: cluster, RequestedBy: "load-profile",
		Handouts: stack.Secrets, NotFound: func(err error) bool { return errors.Is(err, secrets.ErrNotFound) },
		Offline: fleetOffline{stack.Fleet}, OfflineBroker: 2, Quotas: fleetQuotas{stack.Fleet},
		Progress: logWriter{t},
	}
}

// loadReady waits until kfleet knows the cluster's disks (placement) and
// watches its brokers (recovery).
func loadReady(ctx context.Context, t testing.TB, stack *devstack.Stack, cluster string, brokers int) {
	t.Helper()
	waitStatus(ctx, t, stack, cluster, time.Minute, "the brokers' disks are known and watched", func(st workflows.ClusterStatus) bool {
		return workflows.TenantRoom(st).DiskBytes > 0 && st.Watch != nil && len(st.Watch.Registered) == brokers
	})
}

// TestIntegrationLoadProfile runs the load-profile harness at a small
// scale (10 tenants of the seeds' mix, 50,000 messages) on a SASL/ACL
// cluster kfleet operates, crashing broker 2 mid-run behind kfleet's
// back. Judged by what the tenants' clients and the fleet saw: nothing
// acknowledged is lost, every tenant's records are acknowledged, kfleet
// sensed the crash and its recovery started the broker once with no
// unsafe moment, the tenant driven past its plan was throttled and the
// tiny ones never were.
func TestIntegrationLoadProfile(t *testing.T) {
	t.Parallel() // mostly waiting on the entity and the clients' pacing
	const cluster = "load-a"
	began := time.Now()
	stack, runner := loadStack(t, cluster, 3, 500)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	loadReady(ctx, t, stack, cluster, 3)
	ready := time.Now()

	rep, tenants, err := runner.Run(ctx, loadprofile.NewProfile(10, 50_000, 14))
	require.NoError(t, err)
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Logf("stack %.1f s, harness %.1f s\n%s", ready.Sub(began).Seconds(), time.Since(ready).Seconds(), table.String())

	require.Len(t, tenants, 10)
	assert.Equal(t, 50_000, rep.Profile.Messages)
	assert.Zero(t, rep.Totals.Lost, "acks=all: nothing acknowledged is lost")
	kinds := map[loadprofile.Kind]int{}
	for _, tr := range rep.Tenants {
		kinds[tr.Kind]++
		assert.Equal(t, int64(tr.Asked), tr.Acked, "tenant %s (%s): every record acknowledged", tr.Tenant, tr.Kind)
		assert.Zero(t, tr.ProduceErrors, "tenant %s: the producer rode out the crash", tr.Tenant)
		assert.GreaterOrEqual(t, tr.Consumed, tr.Acked, "tenant %s: read back", tr.Tenant)
		switch tr.Kind {
		case loadprofile.KindOverQuota:
			assert.Positive(t, tr.QuotaBreaches, "tenant %s past its plan is throttled by the brokers", tr.Tenant)
			assert.Positive(t, tr.ThrottleMs, "tenant %s's clients were asked to wait", tr.Tenant)
		case loadprofile.KindTiny:
			assert.Zero(t, tr.QuotaBreaches, "tiny tenant %s is never throttled", tr.Tenant)
			assert.Zero(t, tr.Throttles, "tiny tenant %s's clients were never asked to wait", tr.Tenant)
		}
	}
	assert.Equal(t, map[loadprofile.Kind]int{loadprofile.KindTiny: 1, loadprofile.KindLarge: 2, loadprofile.KindOverQuota: 1, loadprofile.KindRandom: 6}, kinds)

	// The crash mid-run: sensed by kfleet, which recovered the broker.
	o := rep.Offline
	require.NotNil(t, o)
	require.Empty(t, o.Skipped)
	assert.NotEmpty(t, o.Recovery, "kfleet ran a recovery of broker 2")
	assert.Equal(t, workflows.StatusSucceeded, o.Status, o.Outcome)
	assert.False(t, o.BackAt.IsZero(), "broker 2 runs again")
	assert.True(t, o.RecoveryStartedAt.After(o.DownAt) && !o.BackAt.Before(o.RecoveryStartedAt), "started by the recovery: down %s, recovery %s, back %s",
		o.DownAt, o.RecoveryStartedAt, o.BackAt)
	var crashed bool
	starts := 0
	for _, e := range stack.Fleet.Audit(cluster) {
		switch {
		case e.Broker == 2 && e.Kind == localfleet.EventCrash:
			crashed = true
		case e.Broker == 2 && e.Kind == localfleet.EventStart && crashed:
			starts++
			assert.True(t, e.Time.After(o.RecoveryStartedAt), "the start is the recovery's")
		}
	}
	assert.True(t, crashed, "the audit shows the crash")
	assert.Equal(t, 1, starts, "the audit shows broker 2 started once after its crash, by kfleet")
	noViolations(t, stack, cluster)
}
