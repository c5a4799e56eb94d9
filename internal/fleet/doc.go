// Package fleet is kfleet's domain model and its pure safety rules: what a
// managed cluster is, what a snapshot of its health says, and whether a broker
// may be restarted now. It does no I/O, so workflows (which must be
// deterministic) and activities share the same rules.
package fleet
