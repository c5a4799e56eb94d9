// Package loadprofile is the load-profile harness of issue #14 (Heroku's
// multi-tenant test, OPERATIONS.md "Tenants"): on one cluster it creates
// tenants through kfleet, gives each a topic through kfleet's admin lane,
// drives them with the seeds' usage mix, takes a broker offline mid-run
// and reports per tenant what the clients saw; Grow then adds tenants
// until a limit is hit and names it.
//
// The model:
//
//   - A Profile is how many tenants, how many messages, a seed and the
//     plans each kind of tenant gets. Assign turns it into one TenantLoad
//     per tenant, deterministically from the seed: 10% tiny (a few small
//     records a second), 20% large (256–900 KiB records, 2 a second: under
//     Kafka's 1 MB default message.max.bytes), the profile's over-quota
//     tenants (16 KiB records as fast as the client goes, past their
//     plan's producer_byte_rate), and the rest random (sizes and rates
//     drawn from the seed), who share what is left of the messages.
//   - A Runner creates each tenant with entity.CreateTenant and follows
//     it, takes its credentials from the secret source's handout as the
//     CLI does (and so deletes it), asks for every tenant's topic in one
//     topic-admin request, then runs a franz-go producer (acks=all,
//     idempotent) and consumer per tenant, authenticated as the tenant
//     (SCRAM-SHA-512).
//   - Each tenant's figures are what its clients saw: records produced and
//     acknowledged, read back, errors, produce latency percentiles (the
//     callback's time after Produce), throttle time the brokers asked for
//     (kgo's HookBrokerThrottle), and lost records: acknowledged and never
//     read back. With acks=all a lost record is a bug.
//   - Fleet-specific observations come through small interfaces the
//     caller may give: a BrokerOffline to take a broker down mid-run and
//     see it running again, a QuotaObserver for what the brokers counted
//     as quota breaches. Without them the harness runs against any
//     cluster kfleet operates.
package loadprofile
