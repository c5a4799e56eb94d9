package localfleet

import (
	"errors"
	"net/http"
	"strconv"
)

// kraftRoutes serves KRaft clusters' quorum and controllers:
//
//	GET  /v1/clusters/{id}/quorum
//	GET  /v1/clusters/{id}/migration (migration_takeover.go)
//	POST /v1/clusters/{id}/controllers/{node}/stop|start
//	POST /v1/clusters/{id}/controllers/{node}/faults/crash|lag-voter|heal
//	POST /v1/clusters/{id}/quorum/faults/partition-leader|heal
func (f *Fleet) kraftRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/clusters/{id}/quorum", f.withCluster(func(w http.ResponseWriter, r *http.Request, id string) {
		f.writeQuorum(w, id, nil)
	}))
	mux.HandleFunc("POST /v1/clusters/{id}/controllers/{node}/stop", f.controllerHandler(func(r *http.Request, id string, node int32, who string) error {
		return f.StopController(r.Context(), id, node, who)
	}))
	mux.HandleFunc("POST /v1/clusters/{id}/controllers/{node}/start", f.controllerHandler(func(r *http.Request, id string, node int32, who string) error {
		return f.StartController(r.Context(), id, node, who)
	}))
	mux.HandleFunc("POST /v1/clusters/{id}/controllers/{node}/faults/{fault}", f.controllerHandler(func(r *http.Request, id string, node int32, who string) error {
		switch kind := FaultKind(r.PathValue("fault")); kind {
		case FaultCrash:
			return f.CrashController(r.Context(), id, node, who)
		default:
			return f.InjectQuorumFault(id, kind, node, who)
		}
	}))
	mux.HandleFunc("GET /v1/clusters/{id}/migration", f.withCluster(func(w http.ResponseWriter, r *http.Request, id string) {
		st, err := f.Migration(id)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}))
	mux.HandleFunc("POST /v1/clusters/{id}/quorum/faults/{fault}", f.withCluster(func(w http.ResponseWriter, r *http.Request, id string) {
		f.writeQuorum(w, id, f.InjectQuorumFault(id, FaultKind(r.PathValue("fault")), -1, whoOf(r)))
	}))
	f.ghostRoutes(mux) // POST /v1/clusters/{id}/kraft/ghosts (kraft_ghost.go)
}

func whoOf(r *http.Request) string {
	if who := r.Header.Get(WhoHeader); who != "" {
		return who
	}
	return "api"
}

func (f *Fleet) controllerHandler(op func(r *http.Request, id string, node int32, who string) error) http.HandlerFunc {
	return f.withCluster(func(w http.ResponseWriter, r *http.Request, id string) {
		n, err := strconv.ParseInt(r.PathValue("node"), 10, 32)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "node must be an integer controller id"})
			return
		}
		f.writeQuorum(w, id, op(r, id, int32(n), whoOf(r)))
	})
}

// writeQuorum answers with the quorum, or with err.
func (f *Fleet) writeQuorum(w http.ResponseWriter, id string, err error) {
	var q QuorumStatus
	if err == nil {
		q, err = f.Quorum(id)
	}
	switch {
	case errors.Is(err, ErrBadFault), errors.Is(err, ErrNotKRaft):
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
	case errors.Is(err, ErrUnknownController):
		writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
	case err != nil:
		writeError(w, err)
	default:
		writeJSON(w, http.StatusOK, q)
	}
}
