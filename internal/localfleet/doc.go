// Package localfleet is the embedded local fleet: simulated Kafka clusters,
// their hosts and their ZooKeeper registrations, for the dev stack and the
// integration tests. The product talks to it only through real protocols,
// so it runs unchanged against it:
//
//   - Kafka protocol: each cluster is one kfake cluster with a single node
//     behind one TCP proxy per broker. Every client connection has exactly
//     one upstream connection to that node, so SASL handshake and
//     authenticate frames pass through and kfake enforces SCRAM and ACLs
//     on it (ClusterConfig.SASL, ClusterConfig.ACLs); client quotas are
//     stored by kfake, and each proxy enforces the producer_byte_rate
//     and consumer_byte_rate quotas it sees set (AlterClientQuotas) on
//     its clients as a Kafka broker does, throttling them
//     (throttle_time_ms, muted connections; Fleet.QuotaStats), and
//     applies producer_byte_rate to the hosts model too, where it caps
//     each tenant's share of a broker's disk growth (FillDiskBy). The
//     proxy answers what kfake cannot model
//     (ElectLeaders, DescribeLogDirs, partition reassignments) and rewrites
//     Metadata, DescribeCluster, FindCoordinator and the Produce/Fetch
//     leader hints from the fleet's own replication model, which is the
//     truth: replicas, ISR, leaders, controller and broker states.
//     Coordinators are spread by hashing the key over running brokers.
//   - kfake facts the proxy works around: its one node leads every
//     partition, coordinates everything and is the controller, so any
//     proxy may forward anything to it; kfake's leader epoch is reported
//     unchanged (clients send it back in fetches and kfake checks it).
//     kfake refuses a replication factor above its node count and stores
//     one replica, so CreateTopics is validated against the fleet's brokers
//     (INVALID_REPLICATION_FACTOR), forwarded with the default replication
//     factor and no manual assignment, and the requested replication (or
//     assignment, in broker ids) is kept in the model and restored in the
//     response; new partitions (CreatePartitions) get their topic's
//     replication factor. kfake knows only broker "0", so BROKER config
//     resources are renamed to "0" on the way in and back on the way out.
//   - Partition moves: reassignments copy each adding replica's log
//     before it joins the ISR, at the cluster's copy rate or under the
//     replication throttles (leader/follower.replication.throttled.rate
//     per broker, .replicas per topic), which the proxy keeps in the model
//     rather than in kfake (throttles.go, reassign_copy.go); what moved is
//     audited and measured (Fleet.ReassignmentStats). A broker whose host
//     is terminated while it holds no replica is decommissioned: it leaves
//     the cluster (decommission.go).
//   - ZooKeeper: every running broker holds its own session with an
//     ephemeral /brokers/ids/<id>, and the controller's session owns
//     /controller, all under the chroot /kfleet/<cluster-id>, exactly as a
//     ZooKeeper-mode Kafka broker registers itself.
//   - AWS SSM: the subset internal/cloud calls (SendCommand,
//     GetCommandInvocation, ListCommands with its filters and NextToken)
//     is served over HTTP (JSON 1.1), so the real aws-sdk-go-v2 code path
//     runs against the fleet.
//   - AWS EC2 (query protocol, AWS's error codes, so aws-sdk-go-v2 and the
//     AWS CLI both work): each configured broker runs on an instance with
//     one data volume; instances and volumes are independent resources
//     (hosts.go) that RunInstances, Stop/Start/TerminateInstances,
//     CreateTags, Create/Attach/Detach/DeleteVolume create and change
//     with EC2's rules, ClientToken idempotency and timed intermediate
//     states (ec2_lifecycle.go, ec2_volumes.go), besides the describes and
//     ModifyVolume (ec2_describe.go). What depends on a host follows its
//     state: the process, SSM, the exporters. A launched host configured
//     by kfleet-ConfigureBroker and started by kfleet-StartBroker becomes
//     a broker: of a new cluster, a new broker of a cluster, or the
//     replacement of a broker whose host is gone, keeping its data when
//     its volume comes with it (provision.go).
//
// Stopping and starting brokers (through SSM, the HTTP API or the Go API)
// follows Kafka's controlled shutdown and restart semantics with simulated
// durations (Timing). Each disturbance is recorded in a per-cluster audit
// (host events also in the fleet's EC2 audit), and unsafe moments (two
// brokers down, a partition under min.insync.replicas, two live instances
// for one broker) are recorded as violations that tests assert on.
//
// It is test and demo infrastructure: workflows/ and activities/ must never
// import it.
package localfleet
