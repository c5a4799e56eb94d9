package workflows

// VersionKRaftUpgrade is the change id of a KRaft spec's upgrade path.
const VersionKRaftUpgrade = versionKRaftUpgrade
