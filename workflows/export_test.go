package workflows

// NotifyEntity exposes notifyEntity to the tests of package workflows_test,
// which play the roll's side of the touch protocol.
var NotifyEntity = notifyEntity
