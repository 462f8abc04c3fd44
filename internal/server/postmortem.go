package server

import "net/http"

// Postmortems writes post-mortems from the journal, as Markdown.
type Postmortems interface {
	// Incident returns an incident's post-mortem; ErrNotFound when there
	// is no such incident.
	Incident(id string) (string, error)
	// DrillRun returns a drill run's post-mortem; ErrNotFound when there
	// is no such run.
	DrillRun(id string) (string, error)
}

// postmortemRoutes adds the post-mortem endpoints, for viewers and the
// console's signed-in users (its incident page links to them).
func (s *Server) postmortemRoutes() {
	s.mux.HandleFunc("GET /api/v1/incidents/{id}/postmortem", s.viewerOrSession(s.handlePostmortem(Postmortems.Incident)))
	s.mux.HandleFunc("GET /api/v1/drills/runs/{id}/postmortem", s.viewerOrSession(s.handlePostmortem(Postmortems.DrillRun)))
}

// handlePostmortem answers the post-mortem that write returns, as
// text/markdown.
func (s *Server) handlePostmortem(write func(Postmortems, string) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.o.Postmortems == nil {
			writeError(w, http.StatusNotFound, "post-mortems are not available")
			return
		}
		md, err := write(s.o.Postmortems, r.PathValue("id"))
		if err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, _ = w.Write([]byte(md))
	}
}
