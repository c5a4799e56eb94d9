package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Tenants' Kafka side: SCRAM users, ACLs PREFIXED on the tenant's prefix,
// client quotas by plan, and removing and counting what a prefix holds.
// Every call is idempotent (a retry after a crash is harmless) and answers
// counts, not lists.

// Client quota keys a plan sets, beside KeyProducerByteRate.
const (
	KeyConsumerByteRate       = "consumer_byte_rate"
	KeyRequestPercentage      = "request_percentage"
	KeyControllerMutationRate = "controller_mutation_rate"
)

// scramIterations is the SCRAM-SHA-512 work factor of tenants' credentials:
// 4,096, kafka-configs' default and Kafka's minimum (the local fleet's kfake
// authenticates a credential only at 4,096; the password is 256 random
// bits, so the work factor guards little).
const scramIterations = 4096

// deleteBatch bounds the topics or groups one request deletes: the admin
// lane never fires one huge burst at the controller.
const deleteBatch = 50

// UpsertSCRAMUser sets the user's SCRAM-SHA-512 credential (creating the
// user): SCRAM holds one credential per mechanism, so setting it again
// replaces it.
func (a *Admin) UpsertSCRAMUser(ctx context.Context, user string, password []byte) error {
	if user == "" || len(password) == 0 {
		return fmt.Errorf("cluster %s: SCRAM user %q: want a user and a password", a.cluster, user)
	}
	res, err := a.adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
		User: user, Mechanism: kadm.ScramSha512, Iterations: scramIterations, Password: string(password),
	}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("cluster %s: set SCRAM credential of user %s: %w", a.cluster, user, err)
	}
	return nil
}

// DeleteSCRAMUser deletes the user's SCRAM credentials; a user without
// any is done.
func (a *Admin) DeleteSCRAMUser(ctx context.Context, user string) error {
	var dels []kadm.DeleteSCRAM
	for _, m := range []kadm.ScramMechanism{kadm.ScramSha512, kadm.ScramSha256} {
		dels = append(dels, kadm.DeleteSCRAM{User: user, Mechanism: m})
	}
	// One mechanism at a time: a request whose one deletion finds nothing
	// may fail as a whole.
	for _, d := range dels {
		res, err := a.adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{d}, nil)
		if err == nil {
			err = res.Error()
		}
		if err != nil && !errors.Is(err, kerr.ResourceNotFound) {
			return fmt.Errorf("cluster %s: delete SCRAM credential of user %s: %w", a.cluster, user, err)
		}
	}
	return nil
}

// tenantACLs are the ACLs a tenant's user holds, all PREFIXED on its
// prefix: topics, consumer groups and transactional ids.
func tenantACLs(user, prefix string) []*kadm.ACLBuilder {
	principal := "User:" + user
	base := func() *kadm.ACLBuilder {
		return kadm.NewACLs().Allow(principal).ResourcePatternType(kadm.ACLPatternPrefixed)
	}
	return []*kadm.ACLBuilder{
		base().Topics(prefix).Operations(kadm.OpRead, kadm.OpWrite, kadm.OpDescribe, kadm.OpCreate, kadm.OpDelete),
		base().Groups(prefix).Operations(kadm.OpRead, kadm.OpDescribe, kadm.OpDelete),
		base().TransactionalIDs(prefix).Operations(kadm.OpWrite, kadm.OpDescribe),
	}
}

// GrantPrefix gives user the tenant's ACLs on prefix and returns how many
// it holds; ACLs that exist already are kept (Kafka ignores duplicates).
func (a *Admin) GrantPrefix(ctx context.Context, user, prefix string) (int, error) {
	if user == "" || !strings.HasSuffix(prefix, ".") {
		return 0, fmt.Errorf("cluster %s: grant %q on %q: want a user and a prefix ending in '.'", a.cluster, user, prefix)
	}
	n := 0
	for _, b := range tenantACLs(user, prefix) {
		res, err := a.adm.CreateACLs(ctx, b)
		if err != nil {
			return n, fmt.Errorf("cluster %s: create ACLs of user %s on %s: %w", a.cluster, user, prefix, err)
		}
		for _, r := range res {
			if r.Err != nil {
				return n, fmt.Errorf("cluster %s: create ACL of user %s on %s: %w %s", a.cluster, user, prefix, r.Err, r.ErrMessage)
			}
			n++
		}
	}
	return n, nil
}

// RevokeUser deletes every ACL of user's principal, whatever its resource,
// and returns how many went.
func (a *Admin) RevokeUser(ctx context.Context, user string) (int, error) {
	b := kadm.NewACLs().Allow("User:" + user).AllowHosts().Deny("User:" + user).DenyHosts().
		AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny)
	res, err := a.adm.DeleteACLs(ctx, b)
	if err != nil {
		return 0, fmt.Errorf("cluster %s: delete ACLs of user %s: %w", a.cluster, user, err)
	}
	n := 0
	for _, r := range res {
		if r.Err != nil {
			return n, fmt.Errorf("cluster %s: delete ACLs of user %s: %w %s", a.cluster, user, r.Err, r.ErrMessage)
		}
		n += len(r.Deleted)
	}
	return n, nil
}

// SetUserQuotas sets the user's four plan quotas.
func (a *Admin) SetUserQuotas(ctx context.Context, user string, q fleet.TenantQuotas) error {
	ops := []kadm.AlterClientQuotaOp{
		{Key: KeyProducerByteRate, Value: q.ProducerByteRate}, {Key: KeyConsumerByteRate, Value: q.ConsumerByteRate},
		{Key: KeyRequestPercentage, Value: q.RequestPercentage}, {Key: KeyControllerMutationRate, Value: q.ControllerMutationRate},
	}
	for _, op := range ops {
		if op.Value <= 0 {
			return fmt.Errorf("cluster %s: quota %s of user %s: want a positive value, got %g", a.cluster, op.Key, user, op.Value)
		}
	}
	return a.alterUserQuotas(ctx, user, ops)
}

// DeleteUserQuotas removes every quota of the entity user=<user>.
func (a *Admin) DeleteUserQuotas(ctx context.Context, user string) error {
	var ops []kadm.AlterClientQuotaOp
	for _, k := range []string{KeyProducerByteRate, KeyConsumerByteRate, KeyRequestPercentage, KeyControllerMutationRate} {
		ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Remove: true})
	}
	return a.alterUserQuotas(ctx, user, ops)
}

func (a *Admin) alterUserQuotas(ctx context.Context, user string, ops []kadm.AlterClientQuotaOp) error {
	if user == "" {
		return fmt.Errorf("cluster %s: quotas: empty user", a.cluster)
	}
	res, err := a.adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: QuotaEntityUser, Name: &user}}, Ops: ops,
	}})
	if err != nil {
		return fmt.Errorf("cluster %s: alter quotas of user %s: %w", a.cluster, user, err)
	}
	for _, r := range res {
		if r.Err != nil {
			return fmt.Errorf("cluster %s: alter quotas of user %s: %w %s", a.cluster, user, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// UserQuotas are the quotas of the entity user=<user> alone, by key.
func (a *Admin) UserQuotas(ctx context.Context, user string) (map[string]float64, error) {
	qs, err := a.adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: QuotaEntityUser, MatchName: &user}})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: describe quotas of user %s: %w", a.cluster, user, err)
	}
	out := map[string]float64{}
	for _, q := range qs {
		if len(q.Entity) != 1 || q.Entity[0].Name == nil || *q.Entity[0].Name != user {
			continue
		}
		for _, v := range q.Values {
			out[v.Key] = v.Value
		}
	}
	return out, nil
}

// topicPartitions lists the cluster's topics with their partition counts,
// asking a broker (kadm may answer from its metadata cache, and a
// verification must not see a deleted topic alive).
func (a *Admin) topicPartitions(ctx context.Context) (map[string]int, error) {
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, a.client)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: metadata: %w", a.cluster, err)
	}
	out := make(map[string]int, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic != nil && kerr.ErrorForCode(t.ErrorCode) == nil {
			out[*t.Topic] = len(t.Partitions)
		}
	}
	return out, nil
}

func withPrefix[V any](m map[string]V, prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// DeletePrefixTopics deletes every topic of the prefix, a batch at a time,
// waiting out the controller's mutation throttle (KIP-599) when it answers
// THROTTLING_QUOTA_EXCEEDED; it returns how many it deleted.
func (a *Admin) DeletePrefixTopics(ctx context.Context, prefix string) (int, error) {
	if !strings.HasSuffix(prefix, ".") {
		return 0, fmt.Errorf("cluster %s: delete topics of %q: a prefix ends in '.'", a.cluster, prefix)
	}
	tp, err := a.topicPartitions(ctx)
	if err != nil {
		return 0, err
	}
	todo, n := withPrefix(tp, prefix), 0
	for len(todo) > 0 {
		batch := todo[:min(deleteBatch, len(todo))]
		res, err := a.adm.DeleteTopics(ctx, batch...)
		if err != nil {
			return n, fmt.Errorf("cluster %s: delete topics of %s: %w", a.cluster, prefix, err)
		}
		var again []string
		for _, t := range batch {
			r := res[t]
			switch {
			case r.Err == nil || errors.Is(r.Err, kerr.UnknownTopicOrPartition):
				n++
			case errors.Is(r.Err, kerr.ThrottlingQuotaExceeded):
				again = append(again, t)
			default:
				return n, fmt.Errorf("cluster %s: delete topic %s: %w %s", a.cluster, t, r.Err, r.ErrMessage)
			}
		}
		todo = append(again, todo[len(batch):]...)
		if len(again) > 0 {
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	return n, nil
}

// DeletePrefixGroups deletes every consumer group of the prefix and
// returns how many it deleted; a group with members still connected
// (NON_EMPTY_GROUP) is an error to retry once they left.
func (a *Admin) DeletePrefixGroups(ctx context.Context, prefix string) (int, error) {
	groups, err := a.prefixGroups(ctx, prefix)
	if err != nil || len(groups) == 0 {
		return 0, err
	}
	n := 0
	for batch := range slices.Chunk(groups, deleteBatch) {
		res, err := a.adm.DeleteGroups(ctx, batch...)
		if err != nil {
			return n, fmt.Errorf("cluster %s: delete groups of %s: %w", a.cluster, prefix, err)
		}
		for _, g := range batch {
			if r := res[g]; r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
				return n, fmt.Errorf("cluster %s: delete group %s: %w", a.cluster, g, r.Err)
			}
			n++
		}
	}
	return n, nil
}

func (a *Admin) prefixGroups(ctx context.Context, prefix string) ([]string, error) {
	listed, err := a.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: list groups: %w", a.cluster, err)
	}
	return withPrefix(listed, prefix), nil
}

// TenantFootprint counts what the prefix and the users hold: topics and
// their partitions and retention, groups, ACLs on the prefix or of the
// users, users with a SCRAM credential, users with quotas.
func (a *Admin) TenantFootprint(ctx context.Context, prefix string, users []string) (fleet.TenantFootprint, error) {
	var f fleet.TenantFootprint
	tp, err := a.topicPartitions(ctx)
	if err != nil {
		return f, err
	}
	topics := withPrefix(tp, prefix)
	f.Topics = len(topics)
	for _, t := range topics {
		f.Partitions += tp[t]
	}
	if err := a.retentionOf(ctx, topics, &f); err != nil {
		return f, err
	}
	groups, err := a.prefixGroups(ctx, prefix)
	if err != nil {
		return f, err
	}
	f.Groups = len(groups)
	if f.ACLs, err = a.countACLs(ctx, prefix, users); err != nil {
		return f, err
	}
	if len(users) == 0 {
		return f, nil
	}
	scram, err := a.adm.DescribeUserSCRAMs(ctx, users...)
	if err != nil {
		return f, fmt.Errorf("cluster %s: describe SCRAM users of %s: %w", a.cluster, prefix, err)
	}
	for _, u := range users {
		if d, ok := scram[u]; ok && d.Err == nil && len(d.CredInfos) > 0 {
			f.Users++
		}
		q, err := a.UserQuotas(ctx, u)
		if err != nil {
			return f, err
		}
		if len(q) > 0 {
			f.Quotas++
		}
	}
	return f, nil
}

// retentionOf bounds the topics' retention.ms into f.
func (a *Admin) retentionOf(ctx context.Context, topics []string, f *fleet.TenantFootprint) error {
	if len(topics) == 0 {
		return nil
	}
	rcs, err := a.adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return fmt.Errorf("cluster %s: describe topic configs: %w", a.cluster, err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return fmt.Errorf("cluster %s: describe configs of topic %s: %w", a.cluster, rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key != "retention.ms" || c.Value == nil {
				continue
			}
			ms, err := strconv.ParseInt(*c.Value, 10, 64)
			switch {
			case err != nil:
				return fmt.Errorf("cluster %s: topic %s: retention.ms %q: %w", a.cluster, rc.Name, *c.Value, err)
			case ms < 0:
				f.UnlimitedRetention++
			default:
				if f.MinRetentionMs == 0 || ms < f.MinRetentionMs {
					f.MinRetentionMs = ms
				}
				f.MaxRetentionMs = max(f.MaxRetentionMs, ms)
			}
		}
	}
	return nil
}

// countACLs counts the ACLs whose resource is in the prefix or whose
// principal is one of the users.
func (a *Admin) countACLs(ctx context.Context, prefix string, users []string) (int, error) {
	all := kadm.NewACLs().Allow().AllowHosts().Deny().DenyHosts().AnyResource().
		ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny)
	res, err := a.adm.DescribeACLs(ctx, all)
	if err != nil {
		return 0, fmt.Errorf("cluster %s: describe ACLs: %w", a.cluster, err)
	}
	n := 0
	for _, r := range res {
		if r.Err != nil {
			return 0, fmt.Errorf("cluster %s: describe ACLs: %w %s", a.cluster, r.Err, r.ErrMessage)
		}
		for _, d := range r.Described {
			user, _ := strings.CutPrefix(d.Principal, "User:")
			if strings.HasPrefix(d.Name, prefix) || slices.Contains(users, user) {
				n++
			}
		}
	}
	return n, nil
}

// The Pool's tenant calls dial the cluster's Admin, then ask it.

type none struct{}

func errOnly(err error) (none, error) { return none{}, err }

// UpsertSCRAMUser: see Admin.UpsertSCRAMUser.
func (p *Pool) UpsertSCRAMUser(ctx context.Context, spec fleet.ClusterSpec, user string, password []byte) error {
	_, err := withAdmin(p, spec, func(a *Admin) (none, error) { return errOnly(a.UpsertSCRAMUser(ctx, user, password)) })
	return err
}

// DeleteSCRAMUser: see Admin.DeleteSCRAMUser.
func (p *Pool) DeleteSCRAMUser(ctx context.Context, spec fleet.ClusterSpec, user string) error {
	_, err := withAdmin(p, spec, func(a *Admin) (none, error) { return errOnly(a.DeleteSCRAMUser(ctx, user)) })
	return err
}

// GrantPrefix: see Admin.GrantPrefix.
func (p *Pool) GrantPrefix(ctx context.Context, spec fleet.ClusterSpec, user, prefix string) (int, error) {
	return withAdmin(p, spec, func(a *Admin) (int, error) { return a.GrantPrefix(ctx, user, prefix) })
}

// RevokeUser: see Admin.RevokeUser.
func (p *Pool) RevokeUser(ctx context.Context, spec fleet.ClusterSpec, user string) (int, error) {
	return withAdmin(p, spec, func(a *Admin) (int, error) { return a.RevokeUser(ctx, user) })
}

// SetUserQuotas: see Admin.SetUserQuotas.
func (p *Pool) SetUserQuotas(ctx context.Context, spec fleet.ClusterSpec, user string, q fleet.TenantQuotas) error {
	_, err := withAdmin(p, spec, func(a *Admin) (none, error) { return errOnly(a.SetUserQuotas(ctx, user, q)) })
	return err
}

// DeleteUserQuotas: see Admin.DeleteUserQuotas.
func (p *Pool) DeleteUserQuotas(ctx context.Context, spec fleet.ClusterSpec, user string) error {
	_, err := withAdmin(p, spec, func(a *Admin) (none, error) { return errOnly(a.DeleteUserQuotas(ctx, user)) })
	return err
}

// DeletePrefixTopics: see Admin.DeletePrefixTopics.
func (p *Pool) DeletePrefixTopics(ctx context.Context, spec fleet.ClusterSpec, prefix string) (int, error) {
	return withAdmin(p, spec, func(a *Admin) (int, error) { return a.DeletePrefixTopics(ctx, prefix) })
}

// DeletePrefixGroups: see Admin.DeletePrefixGroups.
func (p *Pool) DeletePrefixGroups(ctx context.Context, spec fleet.ClusterSpec, prefix string) (int, error) {
	return withAdmin(p, spec, func(a *Admin) (int, error) { return a.DeletePrefixGroups(ctx, prefix) })
}

// TenantFootprint: see Admin.TenantFootprint.
func (p *Pool) TenantFootprint(ctx context.Context, spec fleet.ClusterSpec, prefix string, users []string) (fleet.TenantFootprint, error) {
	return withAdmin(p, spec, func(a *Admin) (fleet.TenantFootprint, error) { return a.TenantFootprint(ctx, prefix, users) })
}
