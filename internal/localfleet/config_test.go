package localfleet

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate())
	require.Len(t, cfg.Clusters, 2)
	b := cfg.Clusters[1]
	assert.Equal(t, "local-b", b.ID)
	assert.Equal(t, 6, b.Brokers)
	assert.Equal(t, 3, b.Racks)
	assert.Equal(t, "us-east-1a", b.rackOf(4))
	assert.Equal(t, "us-east-1c", b.rackOf(6))
	c := cfg.Clusters[0]
	assert.Empty(t, c.rackOf(1))
	assert.Equal(t, "local-a", c.ID)
	assert.Equal(t, 3, c.Brokers)
	assert.Equal(t, 2, c.MinInsyncReplicas)
	assert.Equal(t, []TopicConfig{{Name: "events", Partitions: 8, ReplicationFactor: 3}}, c.Topics)
	assert.Equal(t, Timing{ControlledShutdown: 300 * time.Millisecond, Startup: 500 * time.Millisecond, CatchUp: time.Second, CatchUpBytesPerSec: 50 << 20}, c.Timing)
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, cfg Config)
	}{
		{
			name: "defaults and caps",
			yaml: `
clusters:
  - id: local-a
    brokers: 2
    topics:
      - name: orders
        partitions: 4
    timing:
      catchUp: 2s
  - id: local-b
    topics: []
`,
			check: func(t *testing.T, cfg Config) {
				a, b := cfg.Clusters[0], cfg.Clusters[1]
				assert.Equal(t, int16(2), a.Topics[0].ReplicationFactor, "RF capped at the broker count")
				assert.Equal(t, 2, a.MinInsyncReplicas)
				assert.Equal(t, 2*time.Second, a.Timing.CatchUp)
				assert.Equal(t, 500*time.Millisecond, a.Timing.Startup)
				assert.Equal(t, 3, b.Brokers)
				assert.Empty(t, b.Topics, "an explicit empty list seeds nothing")
			},
		},
		{name: "duplicate ids", yaml: "clusters: [{id: a}, {id: a}]", wantErr: "duplicate id"},
		{name: "bad id", yaml: "clusters: [{id: Local_A}]", wantErr: "id must be"},
		{name: "no clusters", yaml: "clusters: []", wantErr: "no clusters"},
		{name: "negative brokers", yaml: "clusters: [{id: a, brokers: -1}]", wantErr: "brokers must be"},
		{name: "ports count", yaml: "clusters: [{id: a, brokerPorts: [9092]}]", wantErr: "brokerPorts has 1 ports for 3 brokers"},
		{name: "shared port", yaml: "clusters: [{id: a, brokers: 1, brokerPorts: [9092]}, {id: b, brokers: 1, brokerPorts: [9092]}]", wantErr: "already used"},
		{name: "min isr too high", yaml: "clusters: [{id: a, minInsyncReplicas: 4}]", wantErr: "minInsyncReplicas must be 1..3"},
		{name: "bad topic", yaml: "clusters: [{id: a, topics: [{name: 'a b'}]}]", wantErr: "invalid topic name"},
		{name: "unknown field", yaml: "clusters: [{id: a, broker: 3}]", wantErr: "field broker not found"},
		{name: "bad duration", yaml: "clusters: [{id: a, timing: {startup: soon}}]", wantErr: "parse config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fleet.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.yaml), 0o644))
			cfg, err := LoadConfig(path)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestEC2Config(t *testing.T) {
	cfg := DefaultConfig()
	assert.Equal(t, []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"}, cfg.EC2.AvailabilityZones)
	assert.Contains(t, cfg.EC2.InstanceTypes, "m5.xlarge")
	assert.Equal(t, EC2Timing{Pending: time.Second, Stopping: 500 * time.Millisecond, ShuttingDown: 500 * time.Millisecond,
		VolumeCreating: 500 * time.Millisecond, Attaching: 200 * time.Millisecond, Detaching: 200 * time.Millisecond}, cfg.EC2.Timing)
	assert.Equal(t, cfg.Clusters[0].Timing, cfg.EC2.ClusterTiming, "provisioned clusters time as configured ones by default")

	tests := []struct {
		name, yaml, wantErr string
	}{
		{"zones and types", "clusters: [{id: a, racks: 2}]\nec2: {availabilityZones: [us-east-1a, us-east-1b], instanceTypes: [m5.large], timing: {pending: 2s}}", ""},
		{"a rack outside the zones", "clusters: [{id: a, racks: 3}]\nec2: {availabilityZones: [us-east-1a, us-east-1b]}", "rack us-east-1c is not one of"},
		{"a bad zone", "clusters: [{id: a}]\nec2: {availabilityZones: [mars-1a]}", "not a zone name"},
		{"a zone twice", "clusters: [{id: a}]\nec2: {availabilityZones: [us-east-1a, us-east-1a]}", "listed twice"},
		{"a bad type", "clusters: [{id: a}]\nec2: {instanceTypes: [huge]}", "not an instance type"},
		{"negative timing", "clusters: [{id: a}]\nec2: {timing: {attaching: -1s}}", "ec2.timing durations"},
		{"unknown field", "clusters: [{id: a}]\nec2: {zones: [us-east-1a]}", "field zones not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fleet.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.yaml), 0o644))
			cfg, err := LoadConfig(path)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{"m5.large"}, cfg.EC2.InstanceTypes)
			assert.Equal(t, 2*time.Second, cfg.EC2.Timing.Pending)
			assert.Equal(t, defaultAttaching, cfg.EC2.Timing.Attaching)
		})
	}
}
