// Package localfleet is the embedded local fleet: simulated Kafka clusters,
// their hosts and their ZooKeeper registrations, for the dev stack and the
// integration tests. The product talks to it only through real protocols,
// so it runs unchanged against it:
//
//   - Kafka protocol: each cluster is one kfake cluster behind one TCP proxy
//     per broker. The proxy forwards requests to kfake but answers what
//     kfake cannot model (Metadata, DescribeCluster, FindCoordinator,
//     ElectLeaders) from the fleet's own replication model, which is the
//     truth: replicas, ISR, leaders, controller and broker states. kfake's
//     partition leaders are kept equal to the model's (MoveTopicPartition) so
//     that produce and fetch reach the leader the model advertises.
//   - ZooKeeper: every running broker holds its own session with an
//     ephemeral /brokers/ids/<id>, and the controller's session owns
//     /controller, all under the chroot /kfleet/<cluster-id>, exactly as a
//     ZooKeeper-mode Kafka broker registers itself.
//   - AWS SSM: the subset internal/cloud calls (SendCommand,
//     GetCommandInvocation) is served over HTTP (JSON 1.1), so the real
//     aws-sdk-go-v2 code path runs against the fleet.
//
// Stopping and starting brokers (through SSM, the HTTP API or the Go API)
// follows Kafka's controlled shutdown and restart semantics with simulated
// durations (Timing). Each disturbance is recorded in a per-cluster audit,
// and unsafe moments (two brokers down, a partition under
// min.insync.replicas) are recorded as violations that tests assert on.
//
// It is test and demo infrastructure: workflows/ and activities/ must never
// import it.
package localfleet
