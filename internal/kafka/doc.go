// Package kafka reads and changes a Kafka cluster through the Kafka protocol
// (franz-go kgo/kadm): replication state for the safety gates, preferred
// leader elections. It speaks only the protocol, so it works the same against
// production brokers and the local fleet.
package kafka
