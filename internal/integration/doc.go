// Package integration holds kfleet's integration tier: tests that run the
// product against real parts — a Temporal dev server, a real ZooKeeper, the
// local fleet behind real Kafka-protocol, ZooKeeper and AWS SDK clients — and
// judge it from outside, by the fleet's audit. It has no non-test code. Its
// tests, like every test that starts a server, follow the tier rule of
// internal/devstack/tier: named TestIntegration…, skipped under -short.
package integration
