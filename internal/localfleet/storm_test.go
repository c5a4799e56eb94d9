package localfleet_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// createTopicsRaw sends one CreateTopics of n topics of parts partitions
// each (as the version franz-go negotiates, v7 here) and returns how many
// were created, how many were refused THROTTLING_QUOTA_EXCEEDED and the
// response's throttle time.
func createTopicsRaw(ctx context.Context, t *testing.T, cl *kgo.Client, prefix string, n int, parts int32) (created, throttled int, throttleMs int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	for i := range n {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = fmt.Sprintf("%s-%02d", prefix, i)
		rt.NumPartitions, rt.ReplicationFactor = parts, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, resp.Topics, n)
	for _, rt := range resp.Topics {
		switch rt.ErrorCode {
		case 0:
			created++
		case kerr.ThrottlingQuotaExceeded.Code:
			throttled++
		default:
			t.Fatalf("topic %s: %v", rt.Topic, kerr.ErrorForCode(rt.ErrorCode))
		}
	}
	return created, throttled, resp.ThrottleMillis
}

// KIP-599 as Kafka enforces it: a user with controller_mutation_rate 5
// has a bucket of 55 partitions; a strict request's topics are accepted
// while the bucket is not negative (the one that empties it included),
// the rest refused THROTTLING_QUOTA_EXCEEDED with the time the bucket
// needs to refill, -K/Q. A user without the quota is never throttled.
func TestIntegrationControllerMutationQuota(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{saslCluster("local-q", false)}})
	_, adm := kafkaClient(t, f, "local-q", scramAs(testSuperuser, testSuperPass))
	users := []string{"quota-a", "quota-c", "free-b"}
	var upserts []kadm.UpsertSCRAM
	for _, u := range users {
		upserts = append(upserts, kadm.UpsertSCRAM{User: u, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: u + "-secret"})
	}
	altered, err := adm.AlterUserSCRAMs(ctx, nil, upserts)
	require.NoError(t, err)
	for _, a := range altered {
		require.NoError(t, a.Err)
	}
	for _, u := range []string{"quota-a", "quota-c"} {
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
			Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &u}},
			Ops:    []kadm.AlterClientQuotaOp{{Key: "controller_mutation_rate", Value: 5}},
		}})
		require.NoError(t, err)
		for _, r := range res {
			require.NoError(t, r.Err, r.ErrMessage)
		}
	}
	client := func(user string) *kgo.Client {
		cl, _ := kafkaClient(t, f, "local-q", scramAs(user, user+"-secret"))
		return cl
	}

	// 60 one-partition topics at once: 55 empty the bucket, the 56th is
	// taken as the bucket is not yet negative (K = -1), 4 are refused
	// with 1/5 s of throttle.
	created, throttled, ms := createTopicsRaw(ctx, t, client("quota-a"), "a", 60, 1)
	assert.Equal(t, 56, created)
	assert.Equal(t, 4, throttled)
	assert.InDelta(t, 200, ms, 50, "throttle ms")

	// One topic of 60 partitions is taken whole (K = 55 - 60 = -5); the
	// next request waits 5 partitions' refill: about 1 s.
	cl := client("quota-c")
	created, throttled, ms = createTopicsRaw(ctx, t, cl, "c-big", 1, 60)
	assert.Equal(t, []int{1, 0}, []int{created, throttled})
	assert.Zero(t, ms, "accepted while the bucket was not negative")
	created, throttled, ms = createTopicsRaw(ctx, t, cl, "c-more", 1, 1)
	assert.Equal(t, []int{0, 1}, []int{created, throttled})
	assert.InDelta(t, 1000, ms, 100, "throttle ms: -K/Q = 5/5 s")

	// Without the quota: no throttle at all.
	created, throttled, ms = createTopicsRaw(ctx, t, client("free-b"), "b", 60, 1)
	assert.Equal(t, []int{60, 0}, []int{created, throttled})
	assert.Zero(t, ms)

	st, err := f.AdminStats("local-q")
	require.NoError(t, err)
	assert.EqualValues(t, 5, st.MutationsThrottled)
	assert.Greater(t, st.ThrottleMillis, int64(1000))
	assert.Zero(t, st.StormCrashes)
	t.Logf("admin stats: %+v", st)
}

// Sixty CreateTopics from sixty clients at once topple the controller
// (past the default 40 in flight), audited as a crash with the storm;
// the same sixty one after another are fast and harmless.
func TestIntegrationAdminStorm(t *testing.T) {
	t.Parallel()
	const n = 60
	for _, concurrent := range []bool{false, true} {
		t.Run(map[bool]string{false: "sequential", true: "concurrent"}[concurrent], func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-s")}})
			controller := func() int32 {
				_, adm := kafkaClient(t, f, "local-s")
				m, err := adm.Metadata(ctx)
				require.NoError(t, err)
				return m.Controller
			}()
			admins := make([]*kadm.Client, n)
			for i := range admins {
				if i == 0 || concurrent {
					_, admins[i] = kafkaClient(t, f, "local-s")
					_, err := admins[i].Metadata(ctx) // connected, controller known
					require.NoError(t, err)
				} else {
					admins[i] = admins[0]
				}
			}
			start := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			failed := 0
			create := func(i int) {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				r, err := admins[i].CreateTopic(cctx, 1, 1, nil, fmt.Sprintf("storm-%02d", i))
				if err == nil {
					err = r.Err
				}
				if err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
			gate := make(chan struct{})
			for i := range n {
				if !concurrent {
					create(i)
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					create(i)
				}()
			}
			close(gate)
			wg.Wait()
			elapsed := time.Since(start)
			st, err := f.AdminStats("local-s")
			require.NoError(t, err)
			t.Logf("%d CreateTopics in %v, %d failed; admin stats %+v", n, elapsed, failed, st)
			var storms []localfleet.Event
			for _, e := range f.Audit("local-s") {
				if e.Kind == localfleet.EventCrash {
					storms = append(storms, e)
				}
			}
			if !concurrent {
				assert.Zero(t, failed)
				assert.Equal(t, 1, st.PeakInFlight)
				assert.Zero(t, st.StormCrashes)
				assert.Empty(t, storms)
				assert.Less(t, elapsed, 5*time.Second)
				return
			}
			assert.Greater(t, st.PeakInFlight, 40)
			assert.Equal(t, 1, st.StormCrashes)
			require.Len(t, storms, 1)
			assert.Equal(t, controller, storms[0].Broker)
			assert.True(t, strings.HasPrefix(storms[0].Detail, "admin storm: 41 concurrent admin requests"), storms[0].Detail)
			status, err := f.Status("local-s")
			require.NoError(t, err)
			for _, b := range status.Brokers {
				if b.ID == controller {
					assert.Equal(t, localfleet.StateCrashed, b.State, "the toppled controller stays down")
				}
			}
		})
	}
}
