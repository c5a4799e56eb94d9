package cloud

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
	// Parameters: Version (optional; the Kafka version to run).
	DocStartBroker = "kfleet-StartBroker"
	// DocBrokerStatus prints the broker service state (running, stopped, ...)
	// as the first line of standard output.
	DocBrokerStatus = "kfleet-BrokerStatus"
)

// Parameter names of the documents above.
const (
	ParamGracePeriodSeconds = "GracePeriodSeconds"
	ParamVersion            = "Version"
)
