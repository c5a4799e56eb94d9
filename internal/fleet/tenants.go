package fleet

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Tenants of a multi-tenant cluster (OPERATIONS.md "Tenants"): a generated
// name like wabash-58799, a prefix "<name>." that namespaces its topics,
// groups and transactional ids, SCRAM users that each hold one credential
// (a rotation adds <name>-r2, <name>-r3, ...), ACLs on its prefix only and
// quotas by plan. Placement puts a tenant on a cluster with room for its
// plan's disk and partitions.

// tenantWords are the first half of generated names: rivers of North
// America, like Heroku's. Kept in a string, split when used: there is no
// package-level mutable state.
const tenantWords = `allegheny altamaha apalachicola arkansas assiniboine athabasca bighorn brazos
cahaba canadian cheyenne chattahoochee chippewa cimarron clearwater colorado columbia congaree
cumberland delaware deschutes feather flathead fraser gila grand greenbrier guadalupe hudson
humboldt illinois kanawha kaskaskia kennebec kentucky klamath kootenai licking little maumee
merrimack miami milk minnesota mississippi missouri mobile mohawk monongahela muskingum
neches niobrara nueces obion ocmulgee oconee ohio okanogan osage ottawa ouachita owyhee pawnee
pecos pee-dee penobscot platte potomac powder purgatoire raisin rappahannock republican rogue
sabine sacramento salinas salmon saluda sangamon santee savannah scioto shenandoah skagit
smoky snake spokane susquehanna suwannee tallapoosa tennessee tombigbee trinity truckee
tuolumne umpqua verdigris wabash walla-walla wapsipinicon washita white willamette wisconsin
yadkin yakima yampa yellowstone`

// TenantName is the generated name seed picks: a river and five digits,
// e.g. wabash-58799. The same seed gives the same name, so workflow code
// can derive it deterministically.
func TenantName(seed uint64) string {
	words := strings.Fields(tenantWords)
	w := words[seed%uint64(len(words))]
	return fmt.Sprintf("%s-%05d", w, (seed/uint64(len(words)))%100_000)
}

// Bounds of a tenant's name.
const maxTenantNameLen = 48

// ValidateTenantName refuses a name no tenant may have: 2 to 48
// characters of a-z, 0-9 and '-', starting with a letter, not ending with
// '-', and not ending like a rotated user (-r2): a tenant named x-r2 would
// collide with tenant x's second user. No dot: a prefix "<name>." never
// contains another tenant's.
func ValidateTenantName(name string) error {
	ok := len(name) >= 2 && len(name) <= maxTenantNameLen && name[0] >= 'a' && name[0] <= 'z' && !strings.HasSuffix(name, "-") &&
		!strings.ContainsFunc(name, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') })
	if !ok {
		return fmt.Errorf("tenant name %q: want 2-%d characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'", name, maxTenantNameLen)
	}
	if base, n := rotationOf(name); n > 0 {
		return fmt.Errorf("tenant name %q ends like a rotated user of tenant %s: choose another", name, base)
	}
	return nil
}

// TenantPrefix is the prefix of a tenant's topics, groups and
// transactional ids.
func TenantPrefix(name string) string { return name + "." }

// TenantUser is a tenant's SCRAM user after rotations rotations: the
// tenant's name, then <name>-r2, <name>-r3, ...
func TenantUser(name string, rotations int) string {
	if rotations <= 0 {
		return name
	}
	return name + "-r" + strconv.Itoa(rotations+1)
}

// rotationOf splits a rotated user's name: wabash-58799-r2 is wabash-58799
// and 2; a name that is not a rotated user's is 0.
func rotationOf(user string) (base string, n int) {
	i := strings.LastIndex(user, "-r")
	if i <= 0 {
		return user, 0
	}
	n, err := strconv.Atoi(user[i+2:])
	if err != nil || n < 2 || strconv.Itoa(n) != user[i+2:] {
		return user, 0
	}
	return user[:i], n
}

// HandoutName is the name in the secret source of a user's new password,
// handed out once: the caller fetches and deletes it.
func HandoutName(cluster, tenant, user string) string {
	return fmt.Sprintf("kfleet/tenants/%s/%s/%s", cluster, tenant, user)
}

// ClusterRoom is what placement knows of a cluster: its size and the
// plans of its tenants (and of those being created).
type ClusterRoom struct {
	Cluster string
	Brokers int
	// DiskBytes is the sum of the brokers' data volumes; 0: not known yet
	// (no health report), and nothing is placed.
	DiskBytes int64
	// Tenants are the plans of the cluster's tenants, present and pending.
	Tenants []TenantPlan
}

// CapacityBytes is the disk tenants may be promised: one copy of each
// byte is on DefaultReplicationFactor brokers, and volumes grow at 80%.
func (r ClusterRoom) CapacityBytes() int64 {
	return int64(float64(r.DiskBytes) * DiskHeadroom / DefaultReplicationFactor)
}

// PartitionBudget is the partitions tenants may be promised: 4,000
// replicas per broker at the default replication factor, at most 200,000.
func (r ClusterRoom) PartitionBudget() int {
	return min(PartitionReplicasPerBroker*r.Brokers/DefaultReplicationFactor, MaxClusterPartitions)
}

// Used is what the tenants' plans reserve: disk and partitions.
func (r ClusterRoom) Used() (bytes int64, partitions int) {
	for _, p := range r.Tenants {
		bytes += p.CapacityBytes()
		partitions += p.PartitionLimit(r.Brokers)
	}
	return bytes, partitions
}

// Fits says why a tenant of plan p has no room on the cluster (nil: it
// has): disk, partitions, or a dedicated tenant that would share it.
func (r ClusterRoom) Fits(p TenantPlan) error {
	return r.FitsInstead(p, nil)
}

// FitsInstead is Fits for a tenant that gives up plan old (a plan change):
// old's reservation is released first.
func (r ClusterRoom) FitsInstead(p TenantPlan, old *TenantPlan) error {
	tenants := slices.Clone(r.Tenants)
	if old != nil {
		if i := slices.IndexFunc(tenants, func(q TenantPlan) bool { return q.Name == old.Name }); i >= 0 {
			tenants = slices.Delete(tenants, i, i+1)
		}
	}
	rest := ClusterRoom{Cluster: r.Cluster, Brokers: r.Brokers, DiskBytes: r.DiskBytes, Tenants: tenants}
	var errs []error
	switch {
	case r.DiskBytes <= 0:
		errs = append(errs, fmt.Errorf("cluster %s: its brokers' disks are not known yet (no health report)", r.Cluster))
	case p.Dedicated && len(tenants) > 0:
		errs = append(errs, fmt.Errorf("cluster %s: plan %s is dedicated and the cluster has %d other tenant(s)", r.Cluster, p.Name, len(tenants)))
	case slices.ContainsFunc(tenants, func(q TenantPlan) bool { return q.Dedicated }):
		errs = append(errs, fmt.Errorf("cluster %s: a dedicated tenant has it", r.Cluster))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	bytes, partitions := rest.Used()
	if free := r.CapacityBytes() - bytes; p.CapacityBytes() > free {
		errs = append(errs, fmt.Errorf("cluster %s: plan %s needs %d GB of disk, %d GB of %d are free", r.Cluster, p.Name, p.CapacityGB, max(free, 0)/GiB, r.CapacityBytes()/GiB))
	}
	if free := r.PartitionBudget() - partitions; p.PartitionLimit(r.Brokers) > free {
		errs = append(errs, fmt.Errorf("cluster %s: plan %s needs %d partitions, %d of %d are free", r.Cluster, p.Name, p.PartitionLimit(r.Brokers), max(free, 0), r.PartitionBudget()))
	}
	return errors.Join(errs...)
}

// PlaceTenant picks the cluster for a tenant of plan p: among those with
// room, the one with the most disk left after it (ties: the most
// partitions left, then the id), so tenants spread. No cluster with room
// is refused (ErrRefused), with each cluster's reason.
func PlaceTenant(rooms []ClusterRoom, p TenantPlan) (string, error) {
	type fit struct {
		cluster          string
		disk, partitions int64
	}
	var fits []fit
	var why []error
	for _, r := range rooms {
		if err := r.Fits(p); err != nil {
			why = append(why, err)
			continue
		}
		bytes, partitions := r.Used()
		fits = append(fits, fit{r.Cluster, r.CapacityBytes() - bytes - p.CapacityBytes(), int64(r.PartitionBudget() - partitions - p.PartitionLimit(r.Brokers))})
	}
	if len(fits) == 0 {
		if len(rooms) == 0 {
			return "", fmt.Errorf("%w: no cluster is registered to place a %s tenant on", ErrRefused, p.Name)
		}
		return "", fmt.Errorf("%w: no cluster has room for a %s tenant: %w", ErrRefused, p.Name, errors.Join(why...))
	}
	best := slices.MinFunc(fits, func(x, y fit) int {
		return cmp.Or(cmp.Compare(y.disk, x.disk), cmp.Compare(y.partitions, x.partitions), cmp.Compare(x.cluster, y.cluster))
	})
	return best.cluster, nil
}

// TenantSASLMechanism is how tenants authenticate.
const TenantSASLMechanism = "SCRAM-SHA-512"

// TenantCredentials are what a handout holds: how a tenant's user
// connects. It carries a password: it lives only in the secret source and
// in the answer to the one caller who fetches it, never in workflow
// history, logs or chat.
type TenantCredentials struct {
	Cluster   string   `json:"cluster"`
	Tenant    string   `json:"tenant"`
	User      string   `json:"user"`
	Password  string   `json:"password"`
	Mechanism string   `json:"mechanism"`
	Prefix    string   `json:"prefix"`
	Bootstrap []string `json:"bootstrap"`
}
