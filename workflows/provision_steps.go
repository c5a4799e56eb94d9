package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// provisionState is what a provisioning has made so far, by broker id or
// ZooKeeper myid: a step done is never done again, and a human's resume
// retries only the steps that failed. Maps are read in id order only.
type provisionState struct {
	zk       map[int32]activities.ProvisionedHost
	zkAddrs  map[int32]string
	hosts    map[int32]activities.ProvisionedHost
	volumes  map[int32]string
	attached map[int32]bool
	// configured and started are the brokers configured and started.
	configured, started map[int32]bool
	connect             string
	spec                fleet.ClusterSpec
	adopted             int
	// attempts counts a launch step's tokens spent: a human's resume after
	// a launch whose instance was terminated needs a new one.
	attempts map[string]int
	done     map[string]bool
	undoneBy string
	// kraft is a KRaft plan's controllers (provision_kraft.go).
	kraft kraftState
}

func newProvisionState() *provisionState {
	return &provisionState{zk: map[int32]activities.ProvisionedHost{}, zkAddrs: map[int32]string{}, hosts: map[int32]activities.ProvisionedHost{},
		volumes: map[int32]string{}, attached: map[int32]bool{}, configured: map[int32]bool{}, started: map[int32]bool{},
		attempts: map[string]int{}, done: map[string]bool{}}
}

// runTag names this provisioning in its ClientTokens: its first run, so
// every retry of a step reuses its token, while a later create of the
// same id (after a delete) never gets back the instances EC2 remembers
// for an old token (terminated, by then).
func runTag(firstRunID string) string {
	sum := sha256.Sum256([]byte(firstRunID))
	return hex.EncodeToString(sum[:4])
}

// maxToken is EC2's limit on a ClientToken.
const maxToken = 64

// token is the ClientToken of a launch or a volume: the cluster, what it
// is for (b3: broker 3's host, v3: its volume, zk2: ZooKeeper node 2) and
// the run, plus the attempt once a human resumed a spent one.
func (p *provisioning) token(what string) string {
	t := fmt.Sprintf("%s-%s-%s", p.plan.ID, what, p.runTag)
	if n := p.st.attempts[what]; n > 0 {
		t += "-r" + strconv.Itoa(n)
	}
	if len(t) > maxToken {
		sum := sha256.Sum256([]byte(t))
		t = "kfleet-" + hex.EncodeToString(sum[:16])
	}
	return t
}

// provisionStep is one step of a phase: steps of a phase run together.
type provisionStep struct {
	name string
	run  func(ctx workflow.Context) error
	// spends are the tokens (provisionState.attempts' keys) of the
	// launches a step makes: one that fails on a spent token (EC2
	// remembers it for an instance or volume that is gone) takes a new
	// token when a human resumes it.
	spends []string
}

// runPhase runs the steps not done yet together and waits for them all.
// Steps that failed for good (their activity's retries exhausted, or a
// refusal no retry fixes) pause the provisioning for a human: resume runs
// them again, undo returns errUndo, abort an error of type
// ErrTypeAbortedByHuman.
func (p *provisioning) runPhase(ctx workflow.Context, name string, steps []provisionStep) error {
	for {
		var failed []string
		wg := workflow.NewWaitGroup(ctx)
		for _, s := range steps {
			key := name + "/" + s.name
			if p.st.done[key] {
				continue
			}
			wg.Add(1)
			workflow.Go(ctx, func(ctx workflow.Context) {
				defer wg.Done()
				if err := s.run(ctx); err != nil {
					failed = append(failed, fmt.Sprintf("%s: %s", s.name, activityMessage(err)))
					if strings.Contains(activityMessage(err), activities.TokenSpent) {
						for _, k := range s.spends {
							p.st.attempts[k]++
						}
					}
					return
				}
				p.st.done[key] = true
				p.progress.Done++
				p.changed(ctx)
			})
		}
		wg.Wait(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(failed) == 0 {
			return nil
		}
		slices.Sort(failed) // steps end in any order; the pause reads the same
		d, err := p.gate.ask(ctx, Pause{Broker: -1, Step: name, Reason: strings.Join(failed, "; ")})
		if temporal.IsApplicationError(err) && d.Action == DecisionAbort {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("cluster %s: provisioning aborted by %s while %s: what it launched is left as it is "+
				"(a create of the same plan adopts it and goes on; a cluster registered by then is deleted with starter delete)", p.plan.ID, d.By, name),
				ErrTypeAbortedByHuman, nil)
		}
		if err != nil {
			return err
		}
		if d.Action == DecisionUndo {
			p.st.undoneBy = d.By
			return errUndo
		}
	}
}

// build launches and configures everything, phase by phase.
func (p *provisioning) build(ctx workflow.Context) error {
	if p.plan.IsKRaft() {
		// Plans had no KRaft part before it was built: a ZooKeeper
		// plan's history never takes this branch.
		return p.buildKRaft(ctx)
	}
	plan, who := p.plan, p.reason(ctx)
	var hostSteps []provisionStep
	for n := int32(1); n <= fleet.ZooKeeperNodes; n++ {
		what := "zk" + strconv.Itoa(int(n))
		hostSteps = append(hostSteps, provisionStep{name: "ZooKeeper node " + strconv.Itoa(int(n)), spends: []string{what}, run: func(ctx workflow.Context) error {
			h, err := p.launch(ctx, activities.HostInput{Cluster: plan.ID, Role: cloud.RoleZooKeeper, N: n, AZ: plan.ZooKeeperZone(int(n)),
				InstanceType: plan.ZooKeeperInstanceType, Plan: p.fp, Token: p.token(what), RequestedBy: who})
			if err == nil {
				p.st.zk[n] = h
			}
			return err
		}})
	}
	for _, b := range plan.BrokerIDs() {
		hostSteps = append(hostSteps, provisionStep{name: fmt.Sprintf("broker %d host and volume", b), spends: []string{fmt.Sprintf("b%d", b), fmt.Sprintf("v%d", b)},
			run: func(ctx workflow.Context) error { return p.brokerHost(ctx, b) }})
	}
	p.phase(ctx, 2, PhaseHosts, len(hostSteps))
	if err := p.runPhase(ctx, PhaseHosts, hostSteps); err != nil {
		return err
	}

	var servers []string
	for n := int32(1); n <= fleet.ZooKeeperNodes; n++ {
		servers = append(servers, fmt.Sprintf("%d=%s", n, p.st.zk[n].PrivateIP))
	}
	var zkSteps []provisionStep
	for n := int32(1); n <= fleet.ZooKeeperNodes; n++ {
		zkSteps = append(zkSteps, provisionStep{name: "ZooKeeper node " + strconv.Itoa(int(n)), run: func(ctx workflow.Context) error {
			var addr string
			err := workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, fmt.Sprintf("configure ZooKeeper node %d", n)), a.ConfigureZooKeeperNode,
				activities.ZooKeeperNodeInput{Cluster: plan.ID, InstanceID: p.st.zk[n].ID, MyID: n, Servers: strings.Join(servers, ","), Reason: who}).Get(ctx, &addr)
			if err == nil {
				p.st.zkAddrs[n] = addr
			}
			return err
		}})
	}
	p.phase(ctx, 3, PhaseZooKeeper, len(zkSteps))
	if err := p.runPhase(ctx, PhaseZooKeeper, zkSteps); err != nil {
		return err
	}
	p.st.connect = connectString(p.st.zkAddrs, cloud.ZooKeeperChroot(plan.ID))
	p.phase(ctx, 4, PhaseEnsemble, 1)
	if err := p.runPhase(ctx, PhaseEnsemble, []provisionStep{{name: "ensemble " + p.st.connect, run: func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(provisionContext(ctx, 2*time.Minute, "check the ensemble"), a.CheckEnsemble,
			fleet.ClusterSpec{ID: plan.ID, ZooKeeper: p.st.connect}).Get(ctx, nil)
	}}}); err != nil {
		return err
	}

	return p.brokersVerifyRegister(ctx, "brokers registered and configured", func(ctx workflow.Context, hosts map[int32]activities.ProvisionedHost) error {
		return workflow.ExecuteActivity(provisionContext(ctx, 15*time.Minute, "verify registrations and configurations"), a.VerifyProvisioned,
			activities.VerifyInput{Plan: plan, ZooKeeper: p.st.connect, Hosts: hosts}).Get(ctx, &p.st.spec)
	})
}

// brokersVerifyRegister is a provisioning's last phases, a ZooKeeper
// cluster's and a KRaft one's alike: the brokers configured and started
// one step each, the verification (verify, given the brokers' hosts,
// answers the spec), then the registration of the cluster's entity.
func (p *provisioning) brokersVerifyRegister(ctx workflow.Context, verifyStep string, verify func(workflow.Context, map[int32]activities.ProvisionedHost) error) error {
	plan := p.plan
	var brokerSteps []provisionStep
	for _, b := range plan.BrokerIDs() {
		brokerSteps = append(brokerSteps, provisionStep{name: fmt.Sprintf("broker %d", b), run: func(ctx workflow.Context) error {
			return p.brokerUp(ctx, b)
		}})
	}
	p.phase(ctx, 5, PhaseBrokers, len(brokerSteps))
	if err := p.runPhase(ctx, PhaseBrokers, brokerSteps); err != nil {
		return err
	}

	p.phase(ctx, 6, PhaseVerify, 1)
	if err := p.runPhase(ctx, PhaseVerify, []provisionStep{{name: verifyStep, run: func(ctx workflow.Context) error {
		hosts := map[int32]activities.ProvisionedHost{}
		for _, b := range plan.BrokerIDs() {
			hosts[b] = p.st.hosts[b]
		}
		return verify(ctx, hosts)
	}}}); err != nil {
		return err
	}

	p.phase(ctx, 7, PhaseRegister, 1)
	return p.runPhase(ctx, PhaseRegister, []provisionStep{{name: "register cluster/" + plan.ID, run: func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(provisionContext(ctx, time.Minute, "register the cluster's entity"), a.RegisterProvisioned, p.st.spec).Get(ctx, nil)
	}}})
}

// launch runs LaunchHost.
func (p *provisioning) launch(ctx workflow.Context, in activities.HostInput) (activities.ProvisionedHost, error) {
	var h activities.ProvisionedHost
	summary := fmt.Sprintf("launch %s %d in %s", in.Role, in.N, in.AZ)
	err := workflow.ExecuteActivity(provisionContext(ctx, 20*time.Minute, summary), a.LaunchHost, in).Get(ctx, &h)
	if err == nil {
		if h.Adopted {
			p.st.adopted++
		}
		p.progress.Hosts++
		p.changed(ctx)
	}
	return h, err
}

// brokerHost launches broker b's host and creates its data volume
// together, then attaches the volume.
func (p *provisioning) brokerHost(ctx workflow.Context, b int32) error {
	plan, who, az := p.plan, p.reason(ctx), p.plan.BrokerZone(b)
	var hostErr, volErr error
	wg := workflow.NewWaitGroup(ctx)
	if _, ok := p.st.hosts[b]; !ok {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			var h activities.ProvisionedHost
			if h, hostErr = p.launch(ctx, activities.HostInput{Cluster: plan.ID, Role: cloud.RoleBroker, N: b, AZ: az,
				InstanceType: plan.InstanceType, Plan: p.fp, Token: p.token(fmt.Sprintf("b%d", b)), RequestedBy: who}); hostErr == nil {
				p.st.hosts[b] = h
			}
		})
	}
	if _, ok := p.st.volumes[b]; !ok {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			var id string
			volErr = workflow.ExecuteActivity(provisionContext(ctx, 20*time.Minute, fmt.Sprintf("create broker %d's data volume", b)), a.ProvisionDataVolume,
				activities.VolumeInput{Cluster: plan.ID, Broker: b, AZ: az, SizeGiB: plan.VolumeGiB, Plan: p.fp,
					Token: p.token(fmt.Sprintf("v%d", b)), RequestedBy: who}).Get(ctx, &id)
			if volErr == nil {
				p.st.volumes[b] = id
				p.progress.Volumes++
			}
		})
	}
	wg.Wait(ctx)
	if hostErr != nil || volErr != nil {
		return joinErrors(hostErr, volErr)
	}
	if p.st.attached[b] {
		return nil
	}
	err := workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, fmt.Sprintf("attach broker %d's data volume", b)), a.AttachProvisionedVolume,
		activities.ProvisionAttachInput{Cluster: plan.ID, Broker: b, VolumeID: p.st.volumes[b], InstanceID: p.st.hosts[b].ID}).Get(ctx, nil)
	p.st.attached[b] = err == nil
	return err
}

// brokerUp configures broker b's host, then starts Kafka there.
func (p *provisioning) brokerUp(ctx workflow.Context, b int32) error {
	in := activities.BrokerHostInput{Cluster: p.plan.ID, Broker: b, InstanceID: p.st.hosts[b].ID, VolumeID: p.st.volumes[b],
		Rack: p.plan.BrokerZone(b), ZooKeeper: p.st.connect, KafkaVersion: p.plan.KafkaVersion, Reason: p.reason(ctx),
		QuorumVoters: p.st.kraft.voters, KafkaClusterID: p.st.kraft.kafkaClusterID}
	if !p.st.configured[b] {
		if err := workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, fmt.Sprintf("configure broker %d", b)), a.ConfigureBrokerHost, in).Get(ctx, nil); err != nil {
			return err
		}
		p.st.configured[b] = true
	}
	if err := workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, fmt.Sprintf("start broker %d", b)), a.StartBrokerHost, in).Get(ctx, nil); err != nil {
		return err
	}
	p.st.started[b] = true
	p.progress.Started++
	return nil
}

// connectString is zookeeper.connect: the members' client addresses in
// myid order (one address once: the local fleet's members share one
// ensemble) and the chroot.
func connectString(addrs map[int32]string, chroot string) string {
	var out []string
	for n := int32(1); n <= fleet.ZooKeeperNodes; n++ {
		if a := addrs[n]; a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return strings.Join(out, ",") + chroot
}

func joinErrors(errs ...error) error {
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, activityMessage(err))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}
