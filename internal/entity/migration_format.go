package entity

import (
	"fmt"
	"io"
	"time"

	"github.com/kfleet/kfleet/workflows"
)

// RenderMigration writes a migration's state for humans, a few lines: the
// CLI's starter migrate and chat's migrate verbs show the same text.
// approve is how the reader approves the phase awaiting approval, in
// their own tool (a CLI command or a chat command).
func RenderMigration(out io.Writer, st workflows.MigrationState, approve string) {
	fmt.Fprintf(out, "migration of %s to KRaft (asked by %s): %s; the cluster is %s\n", st.Cluster, st.RequestedBy, st.Status, st.Stage)
	for _, b := range st.Blockers {
		fmt.Fprintf(out, "  blocked: %s\n", b.Reason)
	}
	for _, s := range st.Steps {
		line := fmt.Sprintf("  %s approved by %s: %s", s.Params, s.ApprovedBy, s.Status)
		if !s.Ended.IsZero() {
			line += fmt.Sprintf(" in %s", s.Ended.Sub(s.Started).Round(100*time.Millisecond))
		}
		fmt.Fprintln(out, line+Suffix(" (", s.Outcome+s.Error, ")"))
	}
	if st.Status == workflows.MigrationAwaiting {
		fmt.Fprintf(out, "  next: phase %s awaits approval by someone other than %s%s\n", st.Next, st.RequestedBy, Suffix(" (", approve, ")"))
		if st.Rollback != "" {
			fmt.Fprintf(out, "  rollback: %s\n", st.Rollback)
		}
	}
	if st.Error != "" {
		fmt.Fprintf(out, "  last error: %s\n", st.Error)
	}
}
