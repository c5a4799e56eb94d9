package localfleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// A ghost (issue #15) is a broker that was decommissioned (its host
// terminated after a clean shutdown) without anyone calling
// UnregisterBroker: the controllers keep its registration, fenced, with
// the Kafka release and metadata.version range it last registered with.
// Nothing runs behind it, so it never heartbeats again and never comes
// back; it blocks a metadata.version update past what that old release
// supports (INVALID_UPDATE_VERSION naming it) until it is unregistered.

// EventGhost is the audit's record of a ghost being made: Broker is its
// node id, Version its last release.
const EventGhost EventKind = "kraft-ghost"

// ErrGhost is a ghost that cannot be made: the id is a live node's, or
// the release is not modelled.
var ErrGhost = errors.New("bad ghost")

// AddGhost leaves broker id registered with cluster's controllers as a
// ghost that last ran Kafka version (default: the cluster's configured
// release): registered, asked for a controlled shutdown, fenced, never
// heard from again, and not one of the cluster's brokers (no process,
// no host). Its registration keeps an endpoint nothing listens on, as a
// terminated host's does. It is audited as EventGhost.
func (f *Fleet) AddGhost(cluster string, id int32, version, who string) error {
	c, err := f.kraftCluster(cluster)
	if err != nil {
		return err
	}
	port, err := deadPort()
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: ghost %d: %w", cluster, id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kr := c.quorum()
	if version == "" {
		version = kr.cfg.Version
	}
	support, ok := kraft.SupportedBy(version)
	switch {
	case !ok:
		return fmt.Errorf("localfleet: cluster %q: ghost %d: %w: Kafka %s is not a modelled KRaft release (3.7 to 4.0)", cluster, id, ErrGhost, version)
	case c.brokerByID(id) != nil || c.controllerByID(id) != nil:
		return fmt.Errorf("localfleet: cluster %q: ghost %d: %w: the id is one of the cluster's nodes", cluster, id, ErrGhost)
	}
	if _, registered := kr.model.Broker(id); registered {
		return fmt.Errorf("localfleet: cluster %q: ghost %d: %w: already registered", cluster, id, ErrGhost)
	}
	now := time.Now()
	ev, err := kr.model.Register(id, version, support, now)
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: ghost %d: %w", cluster, id, err)
	}
	c.auditKRaftLocked(ev, who)
	if ev, err := kr.model.WantShutdown(id, now); err == nil {
		c.auditKRaftLocked(ev, who)
	}
	if ev, ok := kr.model.Fence(id, now); ok {
		c.auditKRaftLocked(ev, who)
	}
	if kr.ghosts == nil {
		kr.ghosts = map[int32]int{}
	}
	kr.ghosts[id] = port
	c.appendEventLocked(Event{Time: now, Broker: id, Kind: EventGhost, Who: who, Version: version,
		Detail: fmt.Sprintf("broker %d (Kafka %s, metadata.version %s) decommissioned without UnregisterBroker: registered, fenced, not running", id, version, support)})
	return nil
}

// ghostPortLocked is ghost id's registered (dead) listener port; ok is
// false for a node that is no ghost. c.mu must be held.
func (c *cluster) ghostPortLocked(id int32) (int, bool) {
	kr := c.quorum()
	if kr == nil {
		return 0, false
	}
	p, ok := kr.ghosts[id]
	return p, ok
}

// deadPort is a loopback port nothing listens on (reserved, then freed),
// the endpoint a terminated host's registration keeps.
func deadPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// ghostRequest is the body of POST /v1/clusters/{id}/kraft/ghosts.
type ghostRequest struct {
	Broker  int32  `json:"broker"`
	Version string `json:"version,omitempty"`
}

// ghostRoutes serves POST /v1/clusters/{id}/kraft/ghosts
// ({"broker": 7, "version": "3.9.0"}): a ghost, answered with the quorum.
func (f *Fleet) ghostRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/clusters/{id}/kraft/ghosts", f.withCluster(func(w http.ResponseWriter, r *http.Request, id string) {
		var req ghostRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "body: " + err.Error()})
			return
		}
		err := f.AddGhost(id, req.Broker, req.Version, whoOf(r))
		if errors.Is(err, ErrGhost) {
			writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
			return
		}
		f.writeQuorum(w, id, err)
	}))
}
