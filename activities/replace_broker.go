package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// ConfigureInput asks ConfigureBroker to make a host the broker's.
type ConfigureInput struct {
	BrokerInput
	// Instance is the host; Volume its attached data volume; Rack the
	// broker.rack ("" : the host's zone).
	Instance string `json:"instance"`
	Volume   string `json:"volume"`
	Rack     string `json:"rack,omitempty"`
}

// ConfigureBroker runs kfleet-ConfigureBroker on the host: the broker's
// server.properties (its broker.id and rack, the cluster's ZooKeeper
// chroot, log.dirs on the data volume) and the volume mounted. The
// document is idempotent and runOnce sends it once per step, so a retry
// follows the command an earlier attempt sent. A volume holding another
// broker's data is refused by the document, and no retry changes that.
func (a *Activities) ConfigureBroker(ctx context.Context, in ConfigureInput) error {
	if err := in.Spec.Validate(); err != nil {
		return badInput(err)
	}
	chroot := cloud.ZooKeeperChroot(in.Spec.ID)
	if !strings.HasSuffix(in.Spec.ZooKeeper, chroot) {
		return badInput(fmt.Errorf("cluster %s broker %d: zookeeper %q does not end with kfleet's chroot %s: kfleet-ConfigureBroker cannot configure it",
			in.Spec.ID, in.Broker, in.Spec.ZooKeeper, chroot))
	}
	if in.Instance == "" || in.Volume == "" {
		return badInput(fmt.Errorf("cluster %s broker %d: a host and a data volume are required", in.Spec.ID, in.Broker))
	}
	params := map[string]string{
		cloud.ParamClusterID: in.Spec.ID, cloud.ParamBrokerID: strconv.Itoa(int(in.Broker)),
		cloud.ParamZooKeeperConnect: in.Spec.ZooKeeper, cloud.ParamDataVolumeID: in.Volume, cloud.ParamRack: in.Rack,
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("instance", in.Instance).Str("volume", in.Volume).Logger()
	res, err := a.runOnce(ctx, in.Instance, cloud.DocConfigureBroker, params, in.Reason)
	if err != nil {
		log.Error().Err(err).Str("command", res.CommandID).Msg("configuring the broker's new host failed")
		return fmt.Errorf("cluster %s broker %d: configure instance %s on volume %s: %w", in.Spec.ID, in.Broker, in.Instance, in.Volume, err)
	}
	log.Info().Str("command", res.CommandID).Msg("broker configured on its new host")
	return nil
}

// SetHostInput asks SetBrokerHost to tell the entity a broker's new host.
type SetHostInput struct {
	Cluster string `json:"cluster"`
	Broker  int32  `json:"broker"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// SetBrokerHost makes the entity's spec name the broker's new host, so
// that its sensing, health checks and every later operation reach the
// broker there. The entity's spec is changed only while it still names the
// old host (or already names the new one: a retry changes nothing); one
// that names a third host was changed by someone else, and is for a human.
func (a *Activities) SetBrokerHost(ctx context.Context, in SetHostInput) (bool, error) {
	if a.Specs == nil {
		return false, badInput(errors.New("this worker has no Temporal client to change cluster specs with"))
	}
	changed, err := a.Specs.SetBrokerHost(ctx, in.Cluster, in.Broker, in.From, in.To)
	switch {
	case errors.Is(err, fleet.ErrRefused) || errors.Is(err, fleet.ErrUnknownCluster):
		return false, badInput(err)
	case err != nil:
		return false, fmt.Errorf("cluster %s broker %d: set its host to %s: %w", in.Cluster, in.Broker, in.To, err)
	}
	a.Log.Info().Str("cluster", in.Cluster).Int32("broker", in.Broker).Str("from", in.From).Str("to", in.To).Bool("changed", changed).
		Msg("the entity's spec names the broker's new host")
	return changed, nil
}
