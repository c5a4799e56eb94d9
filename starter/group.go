package main

import (
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// newGroupCommand asks the cluster's admin lane (the topic-admin kind's
// delete-groups action) to delete a tenant's consumer group.
func newGroupCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Tenants' consumer groups through the cluster's admin lane: delete",
	}
	cmd.AddCommand(newGroupDeleteCommand(g))
	return cmd
}

// groupFlags are a group command's.
type groupFlags struct {
	tenantFlags
	group string
	wait  bool
}

// request is the delete-groups request for the group.
func (f *groupFlags) request() (workflows.Request, error) {
	if err := f.check(); err != nil {
		return workflows.Request{}, err
	}
	if f.group == "" {
		return workflows.Request{}, exitError{exitBadInput, errors.New("--group is required: the group's full id, e.g. " + fleet.TenantPrefix(f.tenant) + "billing")}
	}
	raw, err := json.Marshal(workflows.TopicAdminParams{Action: activities.TopicActionDeleteGroups,
		Topics: []fleet.TopicRequest{{Tenant: f.tenant, Name: f.group}}})
	if err != nil {
		return workflows.Request{}, err
	}
	return workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: f.by, Reason: f.reason, Params: raw}, nil
}

func newGroupDeleteCommand(g *globalFlags) *cobra.Command {
	var f groupFlags
	cmd := &cobra.Command{
		Use:   "delete --cluster C --tenant T --group ID",
		Short: "Delete a tenant's consumer group through the admin lane",
		Long: "Asks the cluster's entity to delete the group (DeleteGroups); it joins the queued group deletion batch if there is one.\n" +
			"A group with live members is refused (NON_EMPTY_GROUP), not retried: stop its consumers first.\n\n" + topicExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request()
			if err != nil {
				return err
			}
			return askJudged(cmd, g, f.cluster, req, f.wait, refusedIn(req))
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&f.group, "group", "", "the group's full id, under the tenant's prefix: <tenant>.<name>")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "follow the batch until it ends")
	return cmd
}
