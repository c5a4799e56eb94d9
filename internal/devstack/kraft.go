package devstack

import "github.com/kfleet/kfleet/internal/localfleet"

// KRaftClusterID is the cluster `make run` runs in KRaft mode.
const KRaftClusterID = "local-k"

// KRaftCluster is `make run`'s KRaft cluster: 3 controllers on hosts of
// their own and 3 brokers, no ZooKeeper, with the fleet's default KRaft
// timing (heartbeat 2 s, session 9 s), as a Kafka 4 cluster runs.
func KRaftCluster() localfleet.ClusterConfig {
	return localfleet.ClusterConfig{ID: KRaftClusterID, Brokers: 3, KRaft: &localfleet.KRaftConfig{Controllers: 3}}
}
