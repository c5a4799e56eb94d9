package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A plan file's kraft: part makes a KRaft plan, checked on its face; a
// misspelt key in it is refused.
func TestReadKRaftPlan(t *testing.T) {
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "plan.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	const head = "id: korders\nbrokers: 3\navailabilityZones: [us-east-1a, us-east-1b, us-east-1c]\nkafkaVersion: 4.0.0\n"
	plan, err := readPlan(write(head + "kraft:\n  controllers: 5\n  metadataVersion: 4.0-IV3\n"))
	require.NoError(t, err)
	require.NotNil(t, plan.KRaft)
	assert.Equal(t, 5, plan.KRaft.Controllers)
	assert.Equal(t, "4.0-IV3", plan.KRaft.MetadataVersion)

	_, err = readPlan(write(head + "kraft:\n  controlers: 3\n"))
	assert.ErrorContains(t, err, "controlers")
	_, err = readPlan(write(head + "kraft:\n  controllers: 4\n"))
	assert.ErrorContains(t, err, "want 3 or 5")
	_, err = readPlan(write(head))
	assert.ErrorContains(t, err, "no ZooKeeper mode", "Kafka 4 without kraft:")
}
