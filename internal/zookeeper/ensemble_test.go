package zookeeper_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/zookeeper"
)

const srvr38 = `Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC
Latency min/avg/max: 0/0.4/12
Received: 7
Sent: 6
Connections: 1
Outstanding: 3
Zxid: 0x0
Mode: follower
Node count: 5`

func TestParseSrvr(t *testing.T) {
	st, err := zookeeper.ParseSrvr(srvr38)
	require.NoError(t, err)
	assert.Equal(t, zookeeper.SrvrStats{Mode: "follower", Outstanding: 3, MaxLatency: 12, Connections: 1, NodeCount: 5}, st)

	old := strings.Replace(srvr38, "built on 2024-12-29 17:54 UTC", "built on 03/06/2019 16:18 GMT", 1)
	st, err = zookeeper.ParseSrvr(strings.Replace(old, "Mode: follower", "Mode: leader", 1))
	require.NoError(t, err)
	assert.Equal(t, "leader", st.Mode)

	for _, answer := range []string{
		"This ZooKeeper instance is not currently serving requests",
		"srvr is not executed because it is not in the whitelist.",
		"",
	} {
		_, err := zookeeper.ParseSrvr(answer)
		assert.Error(t, err, answer)
	}
	_, err = zookeeper.ParseSrvr(strings.Replace(srvr38, "0/0.4/12", "fast", 1))
	assert.ErrorContains(t, err, "latency")
}

// fakeServer answers four-letter words like a ZooKeeper server would.
func fakeServer(t *testing.T, answers map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4)
				_ = c.SetDeadline(time.Now().Add(time.Second))
				if _, err := c.Read(buf); err != nil {
					return
				}
				if a, ok := answers[string(buf)]; ok {
					_, _ = c.Write([]byte(a))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestEnsembleServerHealth(t *testing.T) {
	ctx := context.Background()
	follower := fakeServer(t, map[string]string{"ruok": "imok", "srvr": srvr38 + "\n"})
	noQuorum := fakeServer(t, map[string]string{"ruok": "imok", "srvr": "This ZooKeeper instance is not currently serving requests\n"})
	silent := fakeServer(t, map[string]string{}) // accepts, never answers ruok
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := ln.Addr().String()
	require.NoError(t, ln.Close())

	spec := fleet.ClusterSpec{ID: "zk-a", ZooKeeper: strings.Join([]string{follower, noQuorum, silent, down}, ",") + "/kfleet/zk-a"}
	got, err := zookeeper.Ensemble{Timeout: 300 * time.Millisecond}.ServerHealth(ctx, spec)
	require.NoError(t, err)
	require.Len(t, got, 4)
	assert.Equal(t, fleet.ZooKeeperServer{Address: follower, OK: true, Mode: "follower", Outstanding: 3, MaxLatency: 12}, got[0])
	for i, addr := range []string{noQuorum, silent, down} {
		s := got[i+1]
		assert.Equal(t, addr, s.Address)
		assert.False(t, s.OK, addr)
		assert.NotEmpty(t, s.Error, addr)
	}
	assert.Contains(t, got[1].Error, "not currently serving")
	assert.Contains(t, got[2].Error, "ruok answered")

	_, err = zookeeper.Ensemble{}.ServerHealth(ctx, fleet.ClusterSpec{ID: "zk-b", ZooKeeper: "/chroot-only"})
	assert.ErrorContains(t, err, "cluster zk-b")
}

// TestIntegrationEnsembleAgainstZooKeeper asks a real standalone ZooKeeper (Debian's
// 3.8, whose srvr go-zookeeper's FLWSrvr cannot parse).
func TestIntegrationEnsembleAgainstZooKeeper(t *testing.T) {
	tier.Integration(t, tier.ZooKeeper)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	z, err := devstack.StartZooKeeper(ctx, t.TempDir(), 0, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = z.Stop() })
	got, err := zookeeper.Ensemble{}.ServerHealth(ctx, fleet.ClusterSpec{ID: "zk-a", ZooKeeper: z.Addr + "/kfleet/zk-a"})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.True(t, got[0].OK, "%+v", got[0])
	assert.Equal(t, "standalone", got[0].Mode)
	assert.Empty(t, got[0].Error)
}

func TestParseMntr(t *testing.T) {
	answer := "zk_version\t3.8.0-1, built on 2024-01-01\nzk_server_state\tleader\nzk_followers\t2\nzk_synced_followers\t1\nzk_avg_latency\t0.5\n"
	m := zookeeper.ParseMntr(answer)
	assert.Equal(t, int64(2), m["zk_followers"])
	assert.Equal(t, int64(1), m["zk_synced_followers"])
	_, ok := m["zk_server_state"]
	assert.False(t, ok, "non-numeric values are skipped")
	_, ok = m["zk_avg_latency"]
	assert.False(t, ok, "decimals are skipped")
}
