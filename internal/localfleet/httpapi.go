package localfleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// The fleet's HTTP server carries two APIs: the AWS SSM and EC2 subsets on
// POST / (AWS clients always post to the endpoint root) and the fleet's own JSON
// API under /v1/.

// WhoHeader names the caller recorded in the audit for API stops/starts.
const WhoHeader = "X-Kfleet-Who"

func (f *Fleet) handler() http.Handler {
	mux := http.NewServeMux()
	// AWS clients post every call to the endpoint root: SSM and Secrets
	// Manager (JSON 1.1) name the operation in X-Amz-Target, EC2 (query)
	// in the form.
	mux.Handle("POST /{$}", awsRoot(jsonTargets(f.ssm, f.sm), newEC2Service(f)))
	mux.HandleFunc("GET /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.Endpoints())
	})
	// A cluster's audit and violations are served before the fleet runs
	// it, once its resources are provisioned (provision.go).
	mux.HandleFunc("GET /v1/clusters/{id}/audit", f.withRecords(func(w http.ResponseWriter, id string) {
		writeJSON(w, http.StatusOK, nonNil(f.Audit(id)))
	}))
	mux.HandleFunc("GET /v1/clusters/{id}/violations", f.withRecords(func(w http.ResponseWriter, id string) {
		writeJSON(w, http.StatusOK, nonNil(f.Violations(id)))
	}))
	mux.HandleFunc("GET /v1/ec2/audit", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(f.EC2Audit()))
	})
	mux.HandleFunc("POST /v1/ec2/zones/{az}/capacity", f.zoneCapacityHandler) // ec2_capacity.go
	mux.HandleFunc("GET /v1/clusters/{id}/brokers", f.withCluster(func(w http.ResponseWriter, r *http.Request, id string) {
		writeJSON(w, http.StatusOK, f.clusterStatus(id))
	}))
	mux.HandleFunc("POST /v1/clusters/{id}/brokers/{broker}/stop", f.lifecycleHandler(f.StopBroker))
	mux.HandleFunc("POST /v1/clusters/{id}/brokers/{broker}/start", f.lifecycleHandler(f.StartBroker))
	mux.HandleFunc("POST /v1/clusters/{id}/brokers/{broker}/faults/{fault}", f.faultHandler) // faults.go
	mux.HandleFunc("GET /v1/clusters/{id}/brokers/{broker}/metrics", f.metricsHandler(true)) // metrics.go
	mux.HandleFunc("GET /v1/clusters/{id}/brokers/{broker}/metrics/node", f.metricsHandler(false))
	f.hostRoutes(mux)  // volume and fill-disk (hosts.go)
	f.kraftRoutes(mux) // KRaft quorum and controllers (kraft_http.go)
	return mux
}

// ClusterStatus is the body of GET /v1/clusters/{id}/brokers.
type ClusterStatus struct {
	Cluster    string         `json:"cluster"`
	Controller int32          `json:"controller"`
	Brokers    []BrokerStatus `json:"brokers"`
	// ActiveController is a KRaft cluster's quorum leader (-1 without
	// one); absent in ZooKeeper mode.
	ActiveController *int32 `json:"activeController,omitempty"`
	// Migration is the brokers' metadata modes and the
	// ZooKeeper-to-KRaft migration's state (migration_takeover.go).
	Migration *MigrationStatus `json:"migration,omitempty"`
}

// BrokerStatus is one broker in a ClusterStatus.
type BrokerStatus struct {
	ID         int32  `json:"id"`
	InstanceID string `json:"instanceId"`
	Address    string `json:"address"`
	State      State  `json:"state"`
	Version    string `json:"version,omitempty"`
	// InterBrokerProtocolVersion is what the broker last started with.
	InterBrokerProtocolVersion string `json:"interBrokerProtocolVersion,omitempty"`
	// Fenced is whether a KRaft broker is fenced (or not registered);
	// always false in ZooKeeper mode.
	Fenced bool `json:"fenced,omitempty"`
}

func (f *Fleet) clusterStatus(id string) ClusterStatus {
	c, err := f.cluster(id)
	if err != nil {
		return ClusterStatus{Cluster: id, Controller: -1}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ClusterStatus{Cluster: id, Controller: c.controller}
	if ks := c.quorum(); ks != nil {
		leader, _ := ks.model.Leader()
		st.ActiveController = &leader
	}
	c.migrationStatusInto(&st) // migration_takeover.go
	for _, b := range c.brokers {
		st.Brokers = append(st.Brokers, BrokerStatus{
			ID: b.id, InstanceID: b.instanceID, Address: b.proxy.addr(), State: b.state, Version: b.version,
			InterBrokerProtocolVersion: b.ibp, Fenced: c.fencedLocked(b),
		})
	}
	return st
}

// withRecords resolves {id} to a cluster the fleet runs or one it keeps
// records for.
func (f *Fleet) withRecords(h func(http.ResponseWriter, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if c, p := f.clusterOrPending(id); c == nil && p.audit == nil && p.violations == nil {
			writeError(w, fmt.Errorf("localfleet: cluster %q: %w", id, ErrUnknownCluster))
			return
		}
		h(w, id)
	}
}

func (f *Fleet) withCluster(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := f.cluster(id); err != nil {
			writeError(w, err)
			return
		}
		h(w, r, id)
	}
}

func (f *Fleet) lifecycleHandler(op func(ctx context.Context, cluster string, broker int32, who string) error) http.HandlerFunc {
	return f.withCluster(func(w http.ResponseWriter, r *http.Request, id string) {
		n, err := strconv.ParseInt(r.PathValue("broker"), 10, 32)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "broker must be an integer id"})
			return
		}
		who := r.Header.Get(WhoHeader)
		if who == "" {
			who = "api"
		}
		if err := op(r.Context(), id, int32(n), who); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, f.clusterStatus(id))
	})
}

type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownCluster), errors.Is(err, ErrUnknownBroker), errors.Is(err, ErrUnknownVolume):
		status = http.StatusNotFound
	case errors.Is(err, ErrClosed):
		status = http.StatusServiceUnavailable
	case errors.Is(err, ErrInstanceNotRunning), errors.Is(err, ErrNoDataVolume), errors.Is(err, ErrBrokerRegistered):
		status = http.StatusConflict
	}
	writeJSON(w, status, apiError{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
