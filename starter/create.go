package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// createAnswer is create's --json answer.
type createAnswer struct {
	Admission workflows.ProvisionAdmission `json:"admission"`
	Result    *workflows.ProvisionResult   `json:"result,omitempty"`
}

func newCreateCommand(g *globalFlags) *cobra.Command {
	var (
		file, by string
		noWait   bool
	)
	cmd := &cobra.Command{
		Use:   "create --file PLAN.yaml",
		Short: "Create a managed cluster from a plan: hosts, volumes, ZooKeeper, brokers, then register it",
		Long: `Starts the cluster's provisioning (cluster/<id>/provision) and follows it:
launches a host per broker over the plan's zones (round-robin, broker.rack =
its zone) with a gp3 data volume each, a 3-node ZooKeeper ensemble on hosts of
its own, configures every broker through SSM (its id, rack, the cluster's
ZooKeeper chroot, listeners, the safe defaults), starts them, verifies their
registrations and configurations, then registers the cluster with kfleet.

The plan is YAML:

  id: orders
  brokers: 3
  availabilityZones: [us-east-1a, us-east-1b, us-east-1c]
  kafkaVersion: 3.7.1
  plan: standard            # optional; its defaults fill what is left out
  instanceType: m5.xlarge   # optional
  volumeGiB: 500            # optional; at least the plan's minimum
  zookeeperInstanceType: t3.medium   # optional
  health: {interval: 1m}    # optional, as a cluster spec's

A plan refused on its face or by the account (fewer brokers than the
replication factor 3, a zone or instance type EC2 does not offer, a volume
under the plan's minimum, an id already in use) exits 2 with every reason,
and nothing is launched. A step that keeps failing pauses for a human:
starter decide --cluster ID resume|undo|abort. Running create again with the
same plan follows the running provisioning, or adopts what an aborted one
left. Exit 0 once the cluster is registered; 1 if it failed or was undone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := readPlan(file)
			if err != nil {
				return exitError{exitBadInput, err}
			}
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				adm, err := entity.Provision(ctx, c, plan, by)
				if err != nil {
					return err
				}
				out := g.progressOut(cmd)
				fmt.Fprintf(out, "provisioning %s admitted (plan %s, asked by %s)\n", adm.WorkflowID, adm.Plan, adm.RequestedBy)
				if noWait {
					return g.emit(cmd, createAnswer{Admission: adm}, func(w io.Writer) {
						fmt.Fprintf(w, "follow it with: starter status --cluster %s\n", plan.ID)
					})
				}
				started := time.Now()
				res, err := entity.FollowProvision(ctx, c, plan.ID, 500*time.Millisecond, func(p workflows.ProvisionProgress) {
					for _, line := range workflows.ProvisionLines(p) {
						fmt.Fprintf(out, "  %s %s\n", time.Now().Format(time.TimeOnly), line)
					}
				})
				if err != nil {
					return err
				}
				return g.emit(cmd, createAnswer{Admission: adm, Result: &res}, func(w io.Writer) {
					fmt.Fprintf(w, "created cluster %s in %s: %d hosts, %d data volumes (%d adopted)\n  bootstrap %s\n",
						res.Cluster, time.Since(started).Round(100*time.Millisecond), res.Hosts, res.Volumes, res.Adopted,
						strings.Join(res.Bootstrap, ","))
					if len(res.QuorumBootstrap) > 0 {
						fmt.Fprintf(w, "  kraft controllers %s\n", strings.Join(res.QuorumBootstrap, ","))
					} else {
						fmt.Fprintf(w, "  zookeeper %s\n", res.ZooKeeper)
					}
				})
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the cluster plan (YAML)")
	cmd.Flags().StringVar(&by, "by", defaultRequester(), "who asks (recorded)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the plan is admitted")
	return cmd
}

// readPlan reads and checks a plan on its face; unknown fields are
// refused (a misspelt field would silently take its default).
func readPlan(path string) (fleet.ClusterPlan, error) {
	var plan fleet.ClusterPlan
	if path == "" {
		return plan, errors.New("--file is required")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return plan, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&plan); err != nil {
		return plan, fmt.Errorf("%s: %w", path, err)
	}
	return plan, plan.Validate()
}

func newDeleteCommand(g *globalFlags) *cobra.Command {
	var (
		cluster, by, reason string
		approvers           []string
		force               bool
	)
	cmd := &cobra.Command{
		Use:   "delete --cluster ID --approvers bob[,carol]",
		Short: "Ask to delete a cluster; a second person approves (starter approve --approval ID [--force])",
		Long: `Deleting a cluster terminates its hosts, deletes its data volumes (and their
data) and its ZooKeeper chroot, and ends its entity. Nothing happens at once:
this starts an approval (cluster/<id>/approval/<request>) that one of
--approvers — never the person asking — answers within an hour:

  starter approve --approval <id> --by bob            # or deny
  starter approve --approval <id> --by bob --force    # even while topics or tenants remain

Without --force (the approver's, or asked here and shown to the approver) the
deletion is refused while topics other than internal ones, or tenants (SCRAM
users), remain, and touches nothing. An unknown cluster exits 2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(approvers) == 0 {
				return exitError{exitBadInput, errors.New("--approvers is required: who may approve the deletion (not you)")}
			}
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				act := activities.Action{Verb: "delete", Cluster: cluster, RequestedBy: by, Reason: reason}
				if force {
					act.Params = []byte(`{"force":true}`)
				}
				sum := fmt.Sprintf("%s-%d", by, time.Now().Unix()/60) // the same request within a minute is one approval
				id, err := entity.Propose(ctx, c, act, approvers, strings.NewReplacer(".", "-", "@", "-").Replace(sum))
				if err != nil {
					return err
				}
				return g.emit(cmd, map[string]string{"approval": id}, func(w io.Writer) {
					fmt.Fprintf(w, "deletion of %s asked by %s%s: waiting for %s to approve within an hour:\n  starter approve --approval %s --by %s [--force]\n",
						cluster, by, map[bool]string{true: " (forced)", false: ""}[force], strings.Join(approvers, " or "), id, approvers[0])
				})
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&by, "by", defaultRequester(), "who asks (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	cmd.Flags().StringSliceVar(&approvers, "approvers", nil, "who may approve (comma-separated; never the requester)")
	cmd.Flags().BoolVar(&force, "force", false, "ask to delete even while topics or tenants remain (the approver sees it)")
	return cmd
}
