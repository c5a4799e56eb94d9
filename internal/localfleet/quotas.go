package localfleet

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client quotas. kfake stores quotas but does not enforce them, so the
// proxy watches AlterClientQuotas go by: kfake still stores every quota
// (DescribeClientQuotas answers from it), and the fleet applies the
// byte-rate ones itself. Every broker enforces producer_byte_rate and
// consumer_byte_rate on its clients' traffic as Kafka does
// (quota_config.go, quota_enforce.go), and a user's producer_byte_rate
// also goes to the hosts model (hosts.go), where it caps that user's
// share of each broker's simulated disk growth (FillDiskBy);
// controller_mutation_rate goes to the cluster's KIP-599 buckets
// (mutation_quota.go). Every
// accepted change is audited with the SASL user that made it.

// Quota entity types and keys, as Kafka names them.
const (
	quotaEntityUser       = "user"
	quotaProducerByteRate = "producer_byte_rate"
	// whoClient is who a quota change is recorded as when the client did
	// not authenticate.
	whoClient = "client"
)

// observeSASL remembers who the session authenticates as, for the audit:
// the mechanism from SaslHandshake, then the user from SCRAM's
// client-first message. kfake does the authentication and closes the
// connection when it fails, so the name is trusted only as far as the
// connection lives. It never fails the request: it only watches.
func (s *session) observeSASL(req *request) {
	kreq, err := req.decode()
	if err != nil {
		s.p.log.Debug().Err(err).Msg("sasl: cannot decode; not tracking the user")
		return
	}
	switch r := kreq.(type) {
	case *kmsg.SASLHandshakeRequest:
		s.mechanism = r.Mechanism
	case *kmsg.SASLAuthenticateRequest:
		if !strings.HasPrefix(s.mechanism, "SCRAM-") {
			return
		}
		if user, ok := scramClientFirstUser(r.SASLAuthBytes); ok {
			s.user = user
		}
	}
}

// who names the session's client in the audit: its SASL user, or
// whoClient without SASL.
func (s *session) who() string {
	if s.user != "" {
		return s.user
	}
	return whoClient
}

// scramClientFirstUser reads the user name from a SCRAM client-first
// message (RFC 5802: gs2-header "n,," or "y,," or "p=cb,", optionally
// with "a=authzid", then "n=user,r=nonce"). ok is false for any other
// message, e.g. the client-final one.
func scramClientFirstUser(msg []byte) (string, bool) {
	parts := strings.Split(string(msg), ",")
	if len(parts) < 4 {
		return "", false
	}
	if cb := parts[0]; cb != "n" && cb != "y" && !strings.HasPrefix(cb, "p=") {
		return "", false
	}
	for _, attr := range parts[2:] {
		if name, ok := strings.CutPrefix(attr, "n="); ok && name != "" {
			// saslname escapes ',' and '=' (RFC 5802 section 5.1).
			return strings.NewReplacer("=2C", ",", "=3D", "=").Replace(name), true
		}
	}
	return "", false
}

// alterClientQuotas forwards AlterClientQuotas to kfake, which validates
// (ACLs) and stores it, and applies to the model what kfake accepted. The
// client gets kfake's answer unchanged.
func (s *session) alterClientQuotas(req *request) ([]byte, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.AlterClientQuotasRequest)
	raw, err := s.roundTrip(req, true)
	if err != nil || r.ValidateOnly {
		return raw, err
	}
	resp, err := req.decodeResponse(raw)
	if err != nil {
		// The model cannot tell what was stored: better a client retry
		// than a model that silently disagrees with kfake.
		return nil, err
	}
	s.p.c.applyClientQuotas(r.Entries, resp.(*kmsg.AlterClientQuotasResponse).Entries, s.who())
	return raw, nil
}

// quotaComponent is one component of a quota entity; a nil name is the
// entity type's default.
type quotaComponent struct {
	typ  string
	name *string
}

// quotaEntityKey identifies an entity whatever the order of its
// components, as Kafka does.
func quotaEntityKey(cs []quotaComponent) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, c.typ+"="+quotaName(c.name))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// quotaName is a component's name, defaultQuotaUser's spelling for the
// default.
func quotaName(name *string) string {
	if name == nil {
		return defaultQuotaUser
	}
	return *name
}

// quotaUser returns the user an entity names when it names a user and
// nothing else (defaultQuotaUser for the default user): the only
// entities whose quotas the model applies. Kafka prefers a (user,
// client-id) quota to a user's; the model has no client ids.
func quotaUser(cs []quotaComponent) (string, bool) {
	if len(cs) != 1 || cs[0].typ != quotaEntityUser {
		return "", false
	}
	return quotaName(cs[0].name), true
}

// quotaBytes converts a producer_byte_rate to whole bytes per second as
// Kafka does (a LONG quota), clamped to int64.
func quotaBytes(v float64) int64 {
	switch {
	case v <= 0 || math.IsNaN(v):
		return 0
	case v >= math.MaxInt64:
		return math.MaxInt64
	}
	return int64(v + 1e-6)
}

// applyClientQuotas applies the entries kfake accepted: byte-rate quotas
// go to the brokers' quota tables, a user's producer_byte_rate to the
// hosts model too, and each entry is recorded in the audit as who's
// change.
func (c *cluster) applyClientQuotas(entries []kmsg.AlterClientQuotasRequestEntry, results []kmsg.AlterClientQuotasResponseEntry, who string) {
	accepted := make(map[string]bool, len(results))
	for _, re := range results {
		cs := make([]quotaComponent, 0, len(re.Entity))
		for _, e := range re.Entity {
			cs = append(cs, quotaComponent{typ: e.Type, name: e.Name})
		}
		accepted[quotaEntityKey(cs)] = re.ErrorCode == 0
	}
	for _, entry := range entries {
		cs := make([]quotaComponent, 0, len(entry.Entity))
		for _, e := range entry.Entity {
			cs = append(cs, quotaComponent{typ: e.Type, name: e.Name})
		}
		if !accepted[quotaEntityKey(cs)] || len(entry.Ops) == 0 {
			continue
		}
		user, isUser := quotaUser(cs)
		qe, enforced := quotaEntityOf(cs)
		var changes []string
		for _, op := range entry.Ops {
			if op.Remove {
				changes = append(changes, op.Key+" removed")
			} else {
				changes = append(changes, op.Key+"="+strconv.FormatFloat(op.Value, 'f', -1, 64))
			}
			if kind, ok := quotaKindOf(op.Key); ok && enforced {
				var v *float64
				if !op.Remove {
					v = &op.Value
				}
				c.quotas.set(kind, qe, v)
			}
			if op.Key == quotaControllerMutationRate && enforced {
				var v *float64
				if !op.Remove {
					v = &op.Value
				}
				c.mutations.set(qe, v)
			}
			if !isUser || op.Key != quotaProducerByteRate {
				continue
			}
			var limit *int64
			if !op.Remove {
				n := quotaBytes(op.Value)
				limit = &n
			}
			c.hosts.setProduceQuota(c.id, user, limit)
		}
		var entity []string
		for _, comp := range cs {
			entity = append(entity, comp.typ+" "+quotaName(comp.name))
		}
		c.recordClusterEvent(EventQuota, who, strings.Join(entity, " ")+" "+strings.Join(changes, ", "))
	}
}

// recordClusterEvent appends a cluster-wide event (Broker 0) to the audit.
func (c *cluster) recordClusterEvent(kind EventKind, who, detail string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.audit = append(c.audit, Event{Time: time.Now(), Cluster: c.id, Kind: kind, Who: who, Detail: detail})
	c.log.Info().Str("event", string(kind)).Str("who", who).Msg(detail)
}

// restoreQuotas applies the quotas kfake already stores (it persists
// them in DataDir) to the brokers' quota tables and the hosts model, so a
// fleet restarted on the same data enforces them again. Nothing is
// audited: nothing changed.
func (c *cluster) restoreQuotas(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, kfakeCallTimeout)
	defer cancel()
	resp, err := kmsg.NewPtrDescribeClientQuotasRequest().RequestWith(ctx, c.kcl) // no filter: every quota
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: describe client quotas: %w", c.id, err)
	}
	for _, e := range resp.Entries {
		cs := make([]quotaComponent, 0, len(e.Entity))
		for _, ec := range e.Entity {
			cs = append(cs, quotaComponent{typ: ec.Type, name: ec.Name})
		}
		user, isUser := quotaUser(cs)
		qe, enforced := quotaEntityOf(cs)
		for _, v := range e.Values {
			if kind, ok := quotaKindOf(v.Key); ok && enforced {
				c.quotas.set(kind, qe, &v.Value)
			}
			if v.Key == quotaControllerMutationRate && enforced {
				c.mutations.set(qe, &v.Value)
			}
			if isUser && v.Key == quotaProducerByteRate {
				n := quotaBytes(v.Value)
				c.hosts.setProduceQuota(c.id, user, &n)
			}
		}
	}
	return nil
}
