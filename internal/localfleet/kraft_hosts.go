package localfleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// KRaft controllers run on hosts of their own, as brokers do: an instance
// per controller, tagged kfleet:role=controller and kfleet:node-id (not
// kfleet:broker-id, so nothing that looks for brokers' hosts finds them),
// without a data volume in the model. The same SSM documents as brokers'
// stop, start and report the Kafka process there (kfleet-StopBroker,
// kfleet-StartBroker with a version, kfleet-BrokerStatus), and stopping or
// terminating the instance kills the controller as a crash does.

// controllerInstanceID is controller id's host, stable across fleet runs.
func controllerInstanceID(cluster string, id int32) string {
	sum := sha256.Sum256([]byte("controller/" + cluster + "/" + strconv.Itoa(int(id))))
	return "i-" + hex.EncodeToString(sum[:])[:17]
}

// addControllerHostsLocked adds the configured KRaft controllers' hosts,
// spread over the cluster's racks (zones) when it has some. h.mu must be
// held.
func (h *hosts) addControllerHostsLocked(cc ClusterConfig, t time.Time) {
	if cc.KRaft == nil {
		return
	}
	for i := range cc.KRaft.Controllers {
		id := int32(kraftControllerBase + i)
		az := defaultAZ
		if cc.Racks > 0 {
			az = fmt.Sprintf("%s%c", AWSRegion, 'a'+rune(i%cc.Racks))
		}
		in := &instance{
			id: controllerInstanceID(cc.ID, id), imageID: defaultImageID, itype: defaultInstanceType, az: az,
			privateIP: proxyHost, launched: t, state: InstanceRunning,
			tags: []ec2Tag{
				{Key: "Name", Value: fmt.Sprintf("%s-controller-%d", cc.ID, id)},
				{Key: cloud.TagCluster, Value: cc.ID},
				{Key: cloud.TagNodeID, Value: strconv.Itoa(int(id))},
				{Key: cloud.TagRole, Value: cloud.RoleController},
			},
		}
		sum := sha256.Sum256([]byte("reservation/" + in.id))
		in.reservationID = "r-" + hex.EncodeToString(sum[:])[:17]
		h.addInstanceLocked(in)
	}
}

// hostedController is the controller whose host instanceID is.
func (f *Fleet) hostedController(instanceID string) (*cluster, *controller, bool) {
	for _, c := range f.clusterList() {
		ks := c.quorum()
		if ks == nil {
			continue
		}
		c.mu.Lock()
		for _, ctl := range ks.controllers {
			if ctl.instanceID == instanceID {
				c.mu.Unlock()
				return c, ctl, true
			}
		}
		c.mu.Unlock()
	}
	return nil, nil, false
}

// controllerDocument runs a broker document on a controller's host.
func (f *Fleet) controllerDocument(ctx context.Context, c *cluster, ctl *controller, document, who string, param func(string) string) (string, error) {
	switch document {
	case cloud.DocStopBroker:
		if err := c.stopController(ctl, who, true); err != nil {
			return "", err
		}
		return fmt.Sprintf("controller %d stopped\n", ctl.id), nil
	case cloud.DocStartBroker:
		if err := c.setControllerMode(ctl, param(cloud.ParamMetadataMode), who); err != nil { // migration.go
			return "", err
		}
		if err := c.startController(ctx, ctl, who, param(cloud.ParamVersion)); err != nil {
			return "", err
		}
		return c.controllerStartedOutput(ctl), nil
	case cloud.DocBrokerStatus:
		c.mu.Lock()
		defer c.mu.Unlock()
		return fmt.Sprintf("%s\nprocess.roles=controller\nnode.id=%d\nversion=%s\nmetadata.mode=%s\n%s",
			ctl.state, ctl.id, ctl.version, controllerMode(ctl), c.controllerLogLocked(ctl)), nil
	case cloud.DocTailLog:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.controllerLogLocked(ctl), nil
	}
	return "", fmt.Errorf("instance %s: %s: controller %d of cluster %q: the local fleet serves only %s, %s, %s and %s on a controller's host",
		c.hostOfController(ctl), document, ctl.id, c.id, cloud.DocStopBroker, cloud.DocStartBroker, cloud.DocBrokerStatus, cloud.DocTailLog)
}

// hostOfController is the instance controller ctl runs on.
func (c *cluster) hostOfController(ctl *controller) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ctl.instanceID
}

// controllerStartedOutput is what kfleet-StartBroker prints on a
// controller's host.
func (c *cluster) controllerStartedOutput(ctl *controller) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("controller %d started\nlistening on %s (%s)\nmetadata.mode=%s\n", ctl.id, ctl.listener.addr(), kraftControllerListener, controllerMode(ctl))
}

// controllerMode is controller ctl's metadata mode, as BrokerStatus
// prints it. c.mu must be held.
func controllerMode(ctl *controller) string {
	if ctl.migration {
		return cloud.MetadataModeMigration
	}
	return cloud.MetadataModeKRaft
}

// setControllerVersionLocked makes controller ctl run Kafka version from
// its next start, with the metadata.version levels that release
// supports. c.mu must be held.
func (c *cluster) setControllerVersionLocked(ctl *controller, version string) error {
	r, ok := kraft.SupportedBy(version)
	if !ok {
		return fmt.Errorf("localfleet: cluster %q: controller %d: Kafka %s cannot run a KRaft controller (3.7 to 4.0 are modelled)", c.id, ctl.id, version)
	}
	ctl.version = version
	return c.quorum().model.SetVoterSupport(ctl.id, r)
}
