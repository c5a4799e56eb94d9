package cloud

import "strings"

// SSM documents kfleet runs on broker hosts. The same names exist as real SSM
// documents under deploy/ssm/ (real shell, systemd) and are served by the
// local fleet, so the code path in internal/cloud is identical in both.
const (
	// DocStopBroker performs a controlled shutdown of the Kafka broker on the
	// host and stops its service. Idempotent: stopping a stopped broker
	// succeeds and changes nothing.
	// Parameters: GracePeriodSeconds (how long the controlled shutdown may take
	// before the process is killed).
	DocStopBroker = "kfleet-StopBroker"
	// DocStartBroker starts the Kafka broker service on the host. Idempotent:
	// starting a running broker succeeds and changes nothing.
	// Parameters: Version (optional; the Kafka version to run),
	// InterBrokerProtocolVersion (optional; written to server.properties as
	// inter.broker.protocol.version before the start, e.g. "3.6" or
	// "3.6-IV2"). A running broker on another version or protocol is
	// refused: both take effect only at a start.
	DocStartBroker = "kfleet-StartBroker"
	// DocBrokerStatus prints the broker service state (running, stopped, ...)
	// as the first line of standard output.
	DocBrokerStatus = "kfleet-BrokerStatus"
	// DocGrowFilesystem grows the Kafka data filesystem online to the size
	// of its (already modified) EBS volume: growpart, then resize2fs or
	// xfs_growfs. Idempotent: a filesystem as large as its volume is left
	// alone. Fails while the volume modification is still "modifying".
	// Parameters: TargetSizeGiB (optional; the size ModifyVolume asked for:
	// the document fails while the device is smaller, rather than succeed
	// without growing anything).
	DocGrowFilesystem = "kfleet-GrowFilesystem"
	// DocSetSysctl sets a host limit now and persistently: a sysctl
	// (vm.max_map_count, fs.file-max) or the kafka service's open-files
	// limit (nofile, in force from the broker's next start). Idempotent:
	// setting the value in force changes nothing.
	// Parameters: Name, Value.
	DocSetSysctl = "kfleet-SetSysctl"
	// DocTailLog prints the broker's last log lines (server.log).
	// Parameters: Lines (optional; default 100).
	DocTailLog = "kfleet-TailLog"
	// DocHostLimits prints the host limits the broker depends on and the
	// broker's segment count, as key=value lines (ParseHostLimits reads
	// them): vm.max_map_count, fs.file-max, nofile (the kafka service's
	// LimitNOFILE), segments (log segments under the data directory), maps
	// and open_files (memory maps and file descriptors the Kafka process
	// holds; 0 when it does not run). Read-only, so always idempotent.
	// No parameters.
	DocHostLimits = "kfleet-HostLimits"
	// DocConfigureBroker makes a launched host a broker of a cluster:
	// it mounts the Kafka data volume (formatting it when blank) at
	// /var/lib/kafka and writes /etc/kafka/server.properties with
	// broker.id, broker.rack, zookeeper.connect (with the cluster's
	// chroot), listeners, log.dirs on the data volume and the managed
	// cluster's safe defaults (default.replication.factor=3,
	// min.insync.replicas=2, num.partitions=8,
	// unclean.leader.election.enable=false,
	// auto.create.topics.enable=false). Kafka starts with
	// DocStartBroker afterwards. Idempotent: the same configuration
	// again changes nothing. Refused while Kafka runs on the host with
	// another configuration, and on a volume holding another broker's
	// data (its meta.properties).
	// Parameters: ClusterId, BrokerId, ZooKeeperConnect (host:port,...
	// ending with the chroot /kfleet/<ClusterId>), DataVolumeId (the
	// attached EBS volume for log.dirs), Rack (optional; default the
	// instance's availability zone). A KRaft cluster's broker has no
	// ZooKeeperConnect and gets QuorumVoters and KafkaClusterId instead
	// (process.roles=broker, node.id, the data volume formatted with the
	// cluster id).
	DocConfigureBroker = "kfleet-ConfigureBroker"
	// DocConfigureZooKeeper makes a launched host (tagged
	// kfleet:role=zookeeper) a member of its cluster's ensemble: it writes
	// the ensemble's zoo.cfg (every member's quorum and election ports)
	// and the node's myid, (re)starts the zookeeper service when either
	// changed, waits until the node answers ruok, and prints its client
	// address as "clientAddress=<host>:<port>" (ZooKeeperClientAddress
	// reads it). Idempotent: the same configuration on a running node
	// changes nothing.
	// Parameters: ClusterId, MyId (1..255), Servers (the ensemble,
	// "<myid>=<host>,<myid>=<host>,...").
	DocConfigureZooKeeper = "kfleet-ConfigureZooKeeper"
	// DocConfigureController makes a launched host (tagged
	// kfleet:role=controller, kfleet:node-id) a KRaft controller of a
	// cluster, before DocStartBroker starts it there: it writes
	// server.properties with process.roles=controller, node.id,
	// controller.quorum.voters and the CONTROLLER listener, and formats
	// the metadata log directory with the Kafka cluster id and
	// metadata.version when it is blank (kafka-storage format). With a
	// ZooKeeperConnect it is a migration controller
	// (zookeeper.metadata.migration.enable=true, zookeeper.connect; KIP-866
	// phase 1). Prints the controller's address as
	// "controllerAddress=<host>:<port>" (ControllerAddress reads it).
	// Idempotent: the same configuration again changes nothing. Refused
	// while a controller runs there with another configuration, and when
	// the log directory was formatted with another cluster id or node id.
	// Parameters: ClusterId, NodeId, Rack (optional), QuorumVoters,
	// KafkaClusterId, MetadataVersion, ZooKeeperConnect (optional).
	DocConfigureController = "kfleet-ConfigureController"
)

// Metadata modes a node starts in (DocStartBroker's MetadataMode): the
// ZooKeeper-to-KRaft migration (KIP-866) changes them one roll at a time.
const (
	// MetadataModeKeep: start with the configured mode (the default).
	MetadataModeKeep = ""
	// MetadataModeZooKeeper: a plain ZooKeeper-mode broker: the migration
	// flag and the quorum settings are removed (a rollback from phase 2).
	MetadataModeZooKeeper = "zookeeper"
	// MetadataModeMigration: a ZooKeeper-mode broker with
	// zookeeper.metadata.migration.enable=true, controller.quorum.voters
	// and controller.listener.names (phase 2); it registers with the
	// KRaft controllers too.
	MetadataModeMigration = "migration"
	// MetadataModeKRaft: on a broker, process.roles=broker, node.id =
	// broker.id, zookeeper.connect and the migration flag removed (phase
	// 3); on a controller, the migration flag and zookeeper.connect
	// removed (phase 4, finalization).
	MetadataModeKRaft = "kraft"
)

// Parameter names of the documents above.
const (
	ParamGracePeriodSeconds = "GracePeriodSeconds"
	ParamVersion            = "Version"
	// ParamInterBrokerProtocolVersion is kfleet-StartBroker's
	// inter.broker.protocol.version.
	ParamInterBrokerProtocolVersion = "InterBrokerProtocolVersion"
	ParamTargetSizeGiB              = "TargetSizeGiB"
	ParamName                       = "Name"
	ParamValue                      = "Value"
	ParamLines                      = "Lines"
	// kfleet-ConfigureBroker's.
	ParamClusterID        = "ClusterId"
	ParamBrokerID         = "BrokerId"
	ParamRack             = "Rack"
	ParamZooKeeperConnect = "ZooKeeperConnect"
	ParamDataVolumeID     = "DataVolumeId"
	// kfleet-ConfigureZooKeeper's.
	ParamMyID    = "MyId"
	ParamServers = "Servers"
	// KRaft's: kfleet-ConfigureController's, and kfleet-StartBroker's
	// MetadataMode and QuorumVoters (the migration's rolls).
	// ParamQuorumVoters is controller.quorum.voters,
	// "<node id>@<host>:<port>,...".
	ParamNodeID          = "NodeId"
	ParamQuorumVoters    = "QuorumVoters"
	ParamKafkaClusterID  = "KafkaClusterId"
	ParamMetadataVersion = "MetadataVersion"
	ParamMetadataMode    = "MetadataMode"
)

// DocumentParameters is every document's parameters, as deploy/ssm
// declares them (a fresh map each call).
func DocumentParameters() map[string][]string {
	return map[string][]string{
		DocStopBroker:     {ParamGracePeriodSeconds},
		DocStartBroker:    {ParamVersion, ParamInterBrokerProtocolVersion, ParamMetadataMode, ParamQuorumVoters},
		DocBrokerStatus:   nil,
		DocGrowFilesystem: {ParamTargetSizeGiB},
		DocSetSysctl:      {ParamName, ParamValue},
		DocTailLog:        {ParamLines},
		DocHostLimits:     nil,
		DocConfigureBroker: {ParamClusterID, ParamBrokerID, ParamRack, ParamZooKeeperConnect, ParamDataVolumeID,
			ParamQuorumVoters, ParamKafkaClusterID},
		DocConfigureZooKeeper: {ParamClusterID, ParamMyID, ParamServers},
		DocConfigureController: {ParamClusterID, ParamNodeID, ParamRack, ParamQuorumVoters,
			ParamKafkaClusterID, ParamMetadataVersion, ParamZooKeeperConnect},
	}
}

// ControllerAddress reads the address kfleet-ConfigureController prints
// ("controllerAddress=<host>:<port>"); "" when it printed none.
func ControllerAddress(stdout string) string { return printedValue(stdout, "controllerAddress=") }

// ZooKeeperChroot is a cluster's ZooKeeper chroot: every broker of the
// cluster registers under it (its zookeeper.connect ends with it).
func ZooKeeperChroot(cluster string) string { return "/kfleet/" + cluster }

// ZooKeeperClientAddress reads the client address kfleet-ConfigureZooKeeper
// prints ("clientAddress=<host>:<port>"); "" when it printed none.
func ZooKeeperClientAddress(stdout string) string { return printedValue(stdout, "clientAddress=") }

// printedValue is the rest of the first line of stdout that starts with
// key.
func printedValue(stdout, key string) string {
	for _, line := range strings.Split(stdout, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key); ok {
			return v
		}
	}
	return ""
}
