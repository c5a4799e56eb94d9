package devstack

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack/tier"
)

func TestIntegrationZooKeeperStartCreateStop(t *testing.T) {
	tier.Integration(t, tier.ZooKeeper)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	z, err := StartZooKeeper(ctx, t.TempDir(), 0, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = z.Stop() })

	conn, _, err := zk.Connect([]string{z.Addr}, 2*time.Second, zk.WithLogger(discardLogger{}))
	require.NoError(t, err)
	defer conn.Close()

	_, err = conn.Create("/kfleet-test", []byte("hello"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	data, _, err := conn.Get("/kfleet-test")
	require.NoError(t, err)
	require.Equal(t, "hello", string(data))

	stat, err := FourLetterWord(ctx, z.Addr, "stat")
	require.NoError(t, err)
	require.Contains(t, stat, "Mode: standalone")

	require.NoError(t, z.Stop())
	require.NoError(t, z.Stop(), "second Stop must be a no-op")

	// The JVM is gone: nothing listens on its port any more.
	_, err = net.DialTimeout("tcp", z.Addr, time.Second)
	require.Error(t, err)
}

// discardLogger silences go-zookeeper, whose goroutines may still log
// after the test has ended (which testing.T does not allow).
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
