package localfleet

import "time"

// beginTakeoverLocked: the migration leader takes over from ZooKeeper.
// c.mu must be held.
func (c *cluster) beginTakeoverLocked(ctl *controller, now time.Time) {}

// finalizeControllerLocked: controller ctl drops the migration. c.mu
// must be held.
func (c *cluster) finalizeControllerLocked(ctl *controller, who string) {}
