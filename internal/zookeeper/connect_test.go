package zookeeper_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/zookeeper"
)

func TestParseConnect(t *testing.T) {
	cases := []struct {
		in      string
		servers []string
		chroot  string
		err     bool
	}{
		{"127.0.0.1:2181", []string{"127.0.0.1:2181"}, "", false},
		{"z1:2181,z2:2181/kfleet/local-a", []string{"z1:2181", "z2:2181"}, "/kfleet/local-a", false},
		{"z1:2181/kafka/", []string{"z1:2181"}, "/kafka", false},
		{"/kafka", nil, "", true},
		{"", nil, "", true},
	}
	for _, c := range cases {
		servers, chroot, err := zookeeper.ParseConnect(c.in)
		if c.err {
			require.Error(t, err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		assert.Equal(t, c.servers, servers, c.in)
		assert.Equal(t, c.chroot, chroot, c.in)
	}
}
