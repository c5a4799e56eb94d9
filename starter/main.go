// Command starter is kfleet's operator CLI: register clusters, ask for
// rolling restarts and follow them, read status, and run the whole local
// stack (`starter dev`).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// Exit codes scripts can rely on.
const (
	exitFailed      = 1 // the operation ran and failed, or an unexpected error
	exitBadInput    = 2 // bad flags or an unknown cluster: nothing was started
	exitUnreachable = 3 // Temporal could not be reached: nothing was started
)

func newRootCommand() *cobra.Command {
	var g globalFlags
	root := &cobra.Command{
		Use:           "starter",
		Short:         "kfleet operator CLI: safe operations on a fleet of Kafka clusters",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.address, "address", "", "Temporal frontend host:port (default: TEMPORAL_ADDRESS or localhost:7233)")
	root.PersistentFlags().StringVar(&g.namespace, "namespace", "", "Temporal namespace (default: TEMPORAL_NAMESPACE or default)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print the answer as JSON (for scripts); errors still go to stderr, with the exit code")
	root.AddCommand(
		newRestartCommand(&g),
		newUpgradeCommand(&g),
		newStatusCommand(&g),
		newClusterCommand(&g),
		newDecideCommand(&g),
		newDevCommand(),
		newChatopsCommand(&g),
		newCreateCommand(&g),
		newDeleteCommand(&g),
		newReplaceControllerCommand(&g), // controller.go
	)
	root.AddCommand(newControlCommands(&g)...) // pause, resume, cancel

	// approve, skip, abort, deny; expand, cleaner-check; schedule ...
	root.AddCommand(newDecisionCommands(&g)...)
	root.AddCommand(newRequestCommands(&g)...)
	root.AddCommand(newScheduleCommand(&g))
	root.AddCommand(newTenantCommand(&g))            // tenant.go
	root.AddCommand(newTopicCommand(&g))             // topic.go
	root.AddCommand(newGroupCommand(&g))             // group.go
	root.AddCommand(newLoadCommand(&g))              // load.go
	root.AddCommand(newReplaceControllerCommand(&g)) // controller.go
	root.AddCommand(newMigrateCommand(&g))           // migrate.go
	root.AddCommand(newAttributesCommand(&g))        // attributes.go
	root.AddCommand(newOverviewCommand(&g))          // overview.go
	return root
}
