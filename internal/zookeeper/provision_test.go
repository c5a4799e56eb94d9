package zookeeper

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEndpointOfRegistration(t *testing.T) {
	for _, tc := range []struct{ data, want, err string }{
		{`{"endpoints":["SSL://h:9093","PLAINTEXT://10.0.1.5:9092"],"host":"x","port":1}`, "10.0.1.5:9092", ""},
		{`{"endpoints":["SASL_SSL://b-1.example:9096"]}`, "b-1.example:9096", ""},
		{`{"host":"10.0.1.6","port":9092}`, "10.0.1.6:9092", ""},
		{`{}`, "", "names no endpoint"},
		{`not json`, "", "parse registration"},
	} {
		got, err := endpointOf([]byte(tc.data))
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
	}
}

func TestRemoveChrootRefusesTheRoot(t *testing.T) {
	for _, connect := range []string{"127.0.0.1:1", "127.0.0.1:1/", "127.0.0.1:1/kfleet/../x"} {
		_, err := RemoveChroot(t.Context(), "c1", connect)
		assert.ErrorContains(t, err, "names no chroot of its own", connect)
	}
}
