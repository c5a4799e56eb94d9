package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// The ZooKeeper-to-KRaft migration's activities (issue #15, KIP-866):
// what ZooKeeper and the cluster's entity say of it, the controllers'
// hosts, and the waits between its rolls. Each one checks before it acts,
// so a phase re-run after a worker crash changes nothing it did already.

// MigrationZooKeeper reads a migrating cluster's znodes and releases them
// from the KRaft controllers (internal/zookeeper).
type MigrationZooKeeper interface {
	MigrationZnodes(ctx context.Context, spec fleet.ClusterSpec) (fleet.MigrationZnodes, error)
	ReleaseFromKRaft(ctx context.Context, spec fleet.ClusterSpec) ([]string, error)
}

// MigrationEntity is what a migration reads and changes in the cluster's
// entity (internal/entity).
type MigrationEntity interface {
	MigrationView(ctx context.Context, cluster string) (MigrationView, error)
	// SetMigrationSpec sets the spec's KRaft side to kraft (nil: a
	// ZooKeeper cluster again; mode kraft: the ZooKeeper connect string is
	// dropped) when the spec is at stage from, and changes nothing when it
	// is at kraft's stage already; any other stage is refused
	// (fleet.ErrRefused): someone else moved it.
	SetMigrationSpec(ctx context.Context, cluster string, from fleet.MigrationStage, kraft *fleet.KRaftSpec) (fleet.ClusterSpec, error)
	// Operation is where an operation of the cluster is.
	Operation(ctx context.Context, cluster, opID string) (OperationState, error)
}

// MigrationView is the entity's side of a migration's preflight.
type MigrationView struct {
	Spec fleet.ClusterSpec `json:"spec"`
	// KafkaVersion and InterBrokerProtocol are the level the entity knows
	// its brokers run (its upgrades keep it); Uncertain says why it is not
	// known.
	KafkaVersion        string `json:"kafkaVersion,omitempty"`
	InterBrokerProtocol string `json:"interBrokerProtocol,omitempty"`
	Uncertain           string `json:"uncertain,omitempty"`
	// MetadataVersionChange names a queued or running operation that
	// would move the cluster's release or metadata.version.
	MetadataVersionChange string `json:"metadataVersionChange,omitempty"`
}

// OperationState is where an operation is: Status "" while queued or
// running, else how it ended.
type OperationState struct {
	Status  string `json:"status"`
	Ended   bool   `json:"ended"`
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
}

// MigrationPreflight is what preflight found: the cluster's stage (a
// cluster already migrating resumes there) and phase 1's blockers.
type MigrationPreflight struct {
	Spec     fleet.ClusterSpec     `json:"spec"`
	Facts    fleet.PreflightFacts  `json:"facts"`
	Blockers []fleet.Blocker       `json:"blockers,omitempty"`
	Stage    fleet.MigrationStage  `json:"stage"`
	Znodes   fleet.MigrationZnodes `json:"znodes"`
}

func (a *Activities) migrationClients(cluster string) error {
	if a.MigrationZK == nil || a.Entities == nil {
		return badInput(fmt.Errorf("cluster %s: this worker cannot migrate clusters: it has no ZooKeeper or Temporal client", cluster))
	}
	return nil
}

// CheckMigrationPreflight gathers the preflight facts of OPERATIONS.md —
// the release and protocol the entity knows, a pending metadata.version
// change, /cluster/id and a leftover /migration — and judges them. It only
// reads.
func (a *Activities) CheckMigrationPreflight(ctx context.Context, cluster string) (MigrationPreflight, error) {
	if err := a.migrationClients(cluster); err != nil {
		return MigrationPreflight{}, err
	}
	view, err := a.Entities.MigrationView(ctx, cluster)
	if errors.Is(err, fleet.ErrRefused) {
		return MigrationPreflight{}, badInput(err)
	}
	if err != nil {
		return MigrationPreflight{}, fmt.Errorf("cluster %s: read its entity: %w", cluster, err)
	}
	res := MigrationPreflight{Spec: view.Spec, Stage: view.Spec.MigrationStage()}
	if res.Stage.Mode == fleet.ModeKRaft {
		res.Blockers = []fleet.Blocker{{Gate: fleet.GatePreflight, Reason: fmt.Sprintf("cluster %s is a KRaft cluster already: there is nothing to migrate", cluster)}}
		return res, nil
	}
	z, err := a.MigrationZK.MigrationZnodes(ctx, view.Spec)
	if err != nil {
		return MigrationPreflight{}, err
	}
	res.Znodes = z
	if res.Stage.Mode == fleet.ModeMigrating {
		return res, nil // past preflight: the migration resumes where it is
	}
	f := fleet.PreflightFacts{
		Versions: map[int32]fleet.KafkaVersion{}, Protocols: map[int32]string{},
		ClusterID: z.ClusterID, LeftoverMigrationZnode: z.Migration,
		MetadataVersionChangePending: view.MetadataVersionChange != "",
	}
	if v, err := fleet.ParseKafkaVersion(view.KafkaVersion); err == nil && view.Uncertain == "" {
		for _, id := range view.Spec.BrokerIDs() {
			f.Versions[id], f.Protocols[id] = v, view.InterBrokerProtocol
		}
	}
	res.Facts, res.Blockers = f, fleet.CheckPreflight(view.Spec.BrokerIDs(), f)
	if view.Uncertain != "" {
		res.Blockers = append(res.Blockers, fleet.Blocker{Gate: fleet.GatePreflight, Reason: "the brokers' release is uncertain: " + view.Uncertain})
	}
	a.Log.Info().Str("cluster", cluster).Int("blockers", len(res.Blockers)).Str("stage", res.Stage.String()).Msg("migration preflight")
	return res, nil
}

// MigrationWaitInput is a wait of a migration phase.
type MigrationWaitInput struct {
	Spec         fleet.ClusterSpec `json:"spec"`
	Timeout      time.Duration     `json:"timeout"`
	PollInterval time.Duration     `json:"pollInterval,omitempty"`
}

// waitProgress carries a wait's deadline in its heartbeat, so a retry
// does not extend it.
type waitProgress struct {
	Deadline time.Time `json:"deadline"`
	Checks   int       `json:"checks"`
	Last     string    `json:"last,omitempty"`
}

// pollUntil polls check until it says done or in.Timeout passes; a
// timeout is bad input naming what was last seen (a human reads it).
func (a *Activities) pollUntil(ctx context.Context, in MigrationWaitInput, what string, check func() (done bool, last string, err error)) error {
	if in.Timeout <= 0 {
		return badInput(fmt.Errorf("cluster %s: %s: timeout %s: want a positive duration", in.Spec.ID, what, in.Timeout))
	}
	p, ok := resume[waitProgress](ctx)
	if !ok || p.Deadline.IsZero() {
		p = waitProgress{Deadline: time.Now().Add(in.Timeout)}
	}
	timedOut := false
	err := a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		done, last, err := check()
		p.Checks++
		if err != nil {
			p.Last = err.Error()
		} else {
			p.Last = last
		}
		if done {
			return true, nil
		}
		timedOut = !time.Now().Before(p.Deadline)
		return timedOut, nil
	}, func() any { return p })
	if err != nil {
		return waitFailed(err, "cluster %s: %s", in.Spec.ID, what)
	}
	if timedOut {
		return badInput(fmt.Errorf("cluster %s: %s: not after %s (%d checks): %s", in.Spec.ID, what, in.Timeout, p.Checks, p.Last))
	}
	return nil
}

// WaitDualWrite waits until the KRaft leader has taken /controller,
// copied the metadata and written /migration: phase 2's end. Stuck there
// is the field's "No brokers are known to KRaft": a broker that was not
// restarted with the migration flag.
func (a *Activities) WaitDualWrite(ctx context.Context, in MigrationWaitInput) (fleet.MigrationZnodes, error) {
	if err := a.migrationClients(in.Spec.ID); err != nil {
		return fleet.MigrationZnodes{}, err
	}
	var z fleet.MigrationZnodes
	err := a.pollUntil(ctx, in, "wait for the KRaft controller to take over (dual-write)", func() (bool, string, error) {
		var err error
		if z, err = a.MigrationZK.MigrationZnodes(ctx, in.Spec); err != nil {
			return false, "", err
		}
		if z.DualWrite() {
			return true, "", nil
		}
		return false, fmt.Sprintf("/controller names %d (kraftControllerEpoch %d), /migration exists: %t, brokers in ZooKeeper %v: every broker must run with the migration flag before the KRaft controller takes over",
			z.Controller, z.KRaftControllerEpoch, z.Migration, z.Brokers), nil
	})
	return z, err
}

// WaitZooKeeperController waits until one of the spec's brokers holds
// /controller again: a rollback's brokers elected a ZooKeeper controller.
func (a *Activities) WaitZooKeeperController(ctx context.Context, in MigrationWaitInput) (int32, error) {
	if err := a.migrationClients(in.Spec.ID); err != nil {
		return -1, err
	}
	var z fleet.MigrationZnodes
	err := a.pollUntil(ctx, in, "wait for a ZooKeeper controller", func() (bool, string, error) {
		var err error
		if z, err = a.MigrationZK.MigrationZnodes(ctx, in.Spec); err != nil {
			return false, "", err
		}
		if z.KRaftControllerEpoch == 0 && slices.Contains(in.Spec.BrokerIDs(), z.Controller) {
			return true, "", nil
		}
		return false, fmt.Sprintf("/controller names %d (kraftControllerEpoch %d)", z.Controller, z.KRaftControllerEpoch), nil
	})
	return z.Controller, err
}

// ReleaseZooKeeper deletes /controller (when a KRaft controller holds it)
// and /migration: a rollback from dual-write, with the controllers
// stopped. It returns what it deleted; nothing when gone already.
func (a *Activities) ReleaseZooKeeper(ctx context.Context, spec fleet.ClusterSpec) ([]string, error) {
	if err := a.migrationClients(spec.ID); err != nil {
		return nil, err
	}
	deleted, err := a.MigrationZK.ReleaseFromKRaft(ctx, spec)
	if err != nil {
		return deleted, err
	}
	a.Log.Info().Str("cluster", spec.ID).Strs("deleted", deleted).Msg("ZooKeeper released from the KRaft controllers")
	return deleted, nil
}

// CheckBrokersMigrated returns why finalization must wait: a broker still
// registered in ZooKeeper (not restarted as a KRaft broker), or not
// registered and unfenced with the controllers. Finalizing before every
// broker re-registered is a failure known from the field.
func (a *Activities) CheckBrokersMigrated(ctx context.Context, spec fleet.ClusterSpec) ([]fleet.Blocker, error) {
	if err := a.migrationClients(spec.ID); err != nil {
		return nil, err
	}
	if a.Fencing == nil {
		return nil, badInput(fmt.Errorf("cluster %s: this worker has no fencing client", spec.ID))
	}
	z, err := a.MigrationZK.MigrationZnodes(ctx, spec)
	if err != nil {
		return nil, err
	}
	fencing, err := a.Fencing.BrokerFencing(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: registrations from fencing: %w", spec.ID, err)
	}
	unfenced := fleet.Unfenced(fencing)
	var out []fleet.Blocker
	for _, id := range spec.BrokerIDs() {
		switch {
		case slices.Contains(z.Brokers, id):
			out = append(out, fleet.Blocker{Gate: fleet.GatePreflight, Reason: fmt.Sprintf("broker %d is still registered in ZooKeeper: it has not been restarted as a KRaft broker (phase 3)", id)})
		case !slices.Contains(unfenced, id):
			out = append(out, fleet.Blocker{Gate: fleet.GatePreflight, Reason: fmt.Sprintf("broker %d is not registered and unfenced with the KRaft controllers", id)})
		}
	}
	return out, nil
}

// SetMigrationSpecInput moves the entity's spec from one migration stage
// to the next.
type SetMigrationSpecInput struct {
	Cluster string               `json:"cluster"`
	From    fleet.MigrationStage `json:"from"`
	KRaft   *fleet.KRaftSpec     `json:"kraft"`
}

// SetMigrationSpec tells the cluster's entity where the migration is (it
// admits operations by the phase, and senses by it). A spec already there
// is left alone; one at another stage is refused.
func (a *Activities) SetMigrationSpec(ctx context.Context, in SetMigrationSpecInput) (fleet.ClusterSpec, error) {
	if err := a.migrationClients(in.Cluster); err != nil {
		return fleet.ClusterSpec{}, err
	}
	spec, err := a.Entities.SetMigrationSpec(ctx, in.Cluster, in.From, in.KRaft)
	if errors.Is(err, fleet.ErrRefused) {
		return spec, badInput(err)
	}
	if err != nil {
		return spec, fmt.Errorf("cluster %s: set its migration stage: %w", in.Cluster, err)
	}
	a.Log.Info().Str("cluster", in.Cluster).Str("stage", spec.MigrationStage().String()).Msg("migration stage set")
	return spec, nil
}

// WaitOperationInput names an operation of a cluster to wait for.
type WaitOperationInput struct {
	Cluster      string        `json:"cluster"`
	OperationID  string        `json:"operationId"`
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// WaitOperationEnded waits until the operation has ended and says how. It
// only reads, heartbeating, so a wait of days costs one activity.
func (a *Activities) WaitOperationEnded(ctx context.Context, in WaitOperationInput) (OperationState, error) {
	if err := a.migrationClients(in.Cluster); err != nil {
		return OperationState{}, err
	}
	var st OperationState
	err := a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		var err error
		st, err = a.Entities.Operation(ctx, in.Cluster, in.OperationID)
		if errors.Is(err, fleet.ErrRefused) {
			return false, badInput(err)
		}
		return err == nil && st.Ended, err
	}, func() any { return st })
	if err != nil {
		return st, waitFailed(err, "cluster %s: wait for operation %s", in.Cluster, in.OperationID)
	}
	return st, nil
}

// ControllerPlacement is where phase 1 puts one controller.
type ControllerPlacement struct {
	Node         int32  `json:"node"`
	AZ           string `json:"az"`
	InstanceType string `json:"instanceType"`
}

// PlaceControllersInput asks where count controllers of the spec's
// cluster go.
type PlaceControllersInput struct {
	Spec  fleet.ClusterSpec `json:"spec"`
	Count int               `json:"count"`
}

// PlaceControllers spreads the controllers over the zones of the
// cluster's broker hosts, round-robin, on the brokers' instance type. It
// only reads.
func (a *Activities) PlaceControllers(ctx context.Context, in PlaceControllersInput) ([]ControllerPlacement, error) {
	if a.EC2 == nil {
		return nil, badInput(fmt.Errorf("cluster %s: this worker has no EC2 client", in.Spec.ID))
	}
	if in.Count != 3 && in.Count != 5 {
		return nil, badInput(fmt.Errorf("cluster %s: %d controllers: want 3 or 5", in.Spec.ID, in.Count))
	}
	hosts, err := a.EC2.FindInstances(ctx, cloud.InstanceFilter{Cluster: in.Spec.ID, Role: cloud.RoleBroker, States: []string{"running"}})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: find its broker hosts: %w", in.Spec.ID, err)
	}
	var zones []string
	itype := ""
	for _, h := range hosts {
		if !slices.Contains(zones, h.AZ) {
			zones = append(zones, h.AZ)
		}
		itype = cmp.Or(itype, h.InstanceType)
	}
	if len(zones) == 0 {
		return nil, badInput(fmt.Errorf("cluster %s: no running broker host found to place the controllers beside", in.Spec.ID))
	}
	slices.Sort(zones)
	out := make([]ControllerPlacement, in.Count)
	for i := range out {
		out[i] = ControllerPlacement{Node: int32(fleet.ControllerIDBase + i), AZ: zones[i%len(zones)], InstanceType: itype}
	}
	return out, nil
}
