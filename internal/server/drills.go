package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// Drills is what the API needs from the drill runner.
type Drills interface {
	// List returns every configured drill with its last result, as a
	// value that encodes to JSON.
	List() (any, error)
	// Start starts the named drill on behalf of actor; ErrNotFound for an
	// unknown drill, ErrConflict when it is running or may not run now.
	Start(ctx context.Context, name, actor, remote string) (store.DrillRun, error)
	// Get returns a drill run; ErrNotFound when there is none.
	Get(id string) (store.DrillRun, error)
	// Abort stops a running drill; ErrNotFound, or ErrConflict when it
	// has ended.
	Abort(ctx context.Context, id, actor, remote string) (store.DrillRun, error)
	// Markdown renders a drill run's report.
	Markdown(run store.DrillRun) string
}

// drillRoutes adds the drill endpoints: viewers read, admins start and
// abort.
func (s *Server) drillRoutes() {
	s.mux.HandleFunc("GET /api/v1/drills", s.viewer(s.handleDrills))
	s.mux.HandleFunc("POST /api/v1/drills/{name}/run", s.admin(s.handleStartDrill))
	s.mux.HandleFunc("GET /api/v1/drills/runs/{id}", s.viewer(s.handleDrillRun))
	s.mux.HandleFunc("POST /api/v1/drills/runs/{id}/abort", s.admin(s.handleAbortDrill))
}

// drills returns the drill runner, or answers 404 when there is none.
func (s *Server) drills(w http.ResponseWriter) Drills {
	if s.o.Drills == nil {
		writeError(w, http.StatusNotFound, "drills are not available")
	}
	return s.o.Drills
}

func (s *Server) handleDrills(w http.ResponseWriter, _ *http.Request) {
	d := s.drills(w)
	if d == nil {
		return
	}
	list, err := d.List()
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"drills": list})
}

// handleStartDrill starts a drill and answers 202 with the run, whose id
// GET /api/v1/drills/runs/{id} follows.
func (s *Server) handleStartDrill(w http.ResponseWriter, r *http.Request) {
	d := s.drills(w)
	if d == nil {
		return
	}
	// The drill outlives the request: it ends with the daemon, not with
	// the client's connection.
	run, err := d.Start(context.WithoutCancel(r.Context()), r.PathValue("name"), identity(r).Name, r.RemoteAddr)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	w.Header().Set("Location", "/api/v1/drills/runs/"+run.ID)
	writeJSON(w, http.StatusAccepted, run)
}

// handleDrillRun answers a drill run as JSON, or its report as Markdown
// for Accept: text/markdown.
func (s *Server) handleDrillRun(w http.ResponseWriter, r *http.Request) {
	d := s.drills(w)
	if d == nil {
		return
	}
	run, err := d.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/markdown") {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, _ = w.Write([]byte(d.Markdown(run)))
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *Server) handleAbortDrill(w http.ResponseWriter, r *http.Request) {
	d := s.drills(w)
	if d == nil {
		return
	}
	run, err := d.Abort(r.Context(), r.PathValue("id"), identity(r).Name, r.RemoteAddr)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, run)
}
