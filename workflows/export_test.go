package workflows

// NotifyEntity exposes notifyEntity to the tests of package workflows_test,
// which play the roll's side of the touch protocol.
var NotifyEntity = notifyEntity

// VersionKRaftControllers is the change id of a KRaft roll's controllers,
// for the tests that check a ZooKeeper roll never asks for it.
const VersionKRaftControllers = versionKRaftControllers

// OverviewOf exposes overviewOf to the overview's table tests.
var OverviewOf = overviewOf
