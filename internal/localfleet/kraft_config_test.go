package localfleet

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadKRaftConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, k *KRaftConfig)
	}{
		{
			name: "defaults",
			yaml: "clusters: [{id: k, kraft: {controllers: 3}}]",
			check: func(t *testing.T, k *KRaftConfig) {
				assert.Equal(t, "3.9-IV0", k.MetadataVersion)
				assert.Equal(t, "3.9.0", k.Version)
				assert.Equal(t, KRaftTiming{Heartbeat: 2 * time.Second, Session: 9 * time.Second, FetchTimeout: 2 * time.Second, Election: time.Second}, k.Timing)
			},
		},
		{
			name: "explicit",
			yaml: `
clusters:
  - id: k
    kraft:
      controllers: 5
      metadataVersion: 4.0-IV3
      version: 4.0.0
      controllerPorts: [19093, 19094, 19095, 19096, 19097]
      timing: {heartbeat: 100ms, session: 500ms, fetchTimeout: 200ms, election: 100ms}
`,
			check: func(t *testing.T, k *KRaftConfig) {
				assert.Equal(t, 5, k.Controllers)
				assert.Equal(t, 500*time.Millisecond, k.Timing.Session)
				assert.Equal(t, 10*time.Millisecond, k.Timing.tick())
			},
		},
		{name: "no ZooKeeper mode change", yaml: "clusters: [{id: z}]", check: func(t *testing.T, k *KRaftConfig) { assert.Nil(t, k) }},
		{name: "even controllers", yaml: "clusters: [{id: k, kraft: {controllers: 4}}]", wantErr: "kraft.controllers must be 3 or 5, got 4"},
		{name: "unknown metadata.version", yaml: "clusters: [{id: k, kraft: {controllers: 3, metadataVersion: 3.9-IV9}}]", wantErr: "not a modelled metadata.version"},
		{name: "level above the binaries", yaml: "clusters: [{id: k, kraft: {controllers: 3, metadataVersion: 4.0-IV3}}]", wantErr: "above what Kafka 3.9.0 supports (3.9-IV0)"},
		{name: "ZooKeeper-only release", yaml: "clusters: [{id: k, kraft: {controllers: 3, version: 2.8.2}}]", wantErr: "only Kafka 3.7 to 4.0"},
		{name: "ports count", yaml: "clusters: [{id: k, kraft: {controllers: 3, controllerPorts: [1]}}]", wantErr: "controllerPorts has 1 ports for 3 controllers"},
		{name: "port shared with a broker", yaml: "clusters: [{id: k, brokers: 1, brokerPorts: [9092], kraft: {controllers: 3, controllerPorts: [9092, 9093, 9094]}}]", wantErr: "controller port 9092 already used"},
		{name: "session within heartbeat", yaml: "clusters: [{id: k, kraft: {controllers: 3, timing: {heartbeat: 2s, session: 1s}}}]", wantErr: "must exceed heartbeat"},
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
			tt.check(t, cfg.Clusters[0].KRaft)
		})
	}
}
