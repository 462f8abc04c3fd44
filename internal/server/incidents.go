package server

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// Paging of GET /api/v1/incidents.
const (
	DefaultIncidentPage = 100
	MaxIncidentPage     = 1000
)

// handleIncidents answers one page of incidents, newest first:
// ?limit= (default 100, at most 1000), ?cursor= (the previous page's
// nextCursor, opaque), ?state= (open, resolved) and ?service= filters. The
// answer's nextCursor is absent on the last page. A page whose filters
// skip many incidents may come back short, with a nextCursor: keep paging
// until there is none.
func (s *Server) handleIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultIncidentPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxIncidentPage {
			writeError(w, http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(MaxIncidentPage))
			return
		}
		limit = n
	}
	before, err := base64.RawURLEncoding.DecodeString(q.Get("cursor"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid cursor: pass nextCursor from the previous page as it is")
		return
	}
	state := q.Get("state")
	switch state {
	case "", store.IncidentOpen, store.IncidentResolved:
	default:
		writeError(w, http.StatusBadRequest, "state must be open or resolved")
		return
	}
	page, err := s.o.Store.IncidentPage(store.IncidentQuery{Before: string(before), Limit: limit, State: state, Service: q.Get("service")})
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	out := struct {
		Incidents  []store.Incident `json:"incidents"`
		NextCursor string           `json:"nextCursor,omitempty"`
	}{Incidents: page.Incidents}
	if page.Next != "" {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(page.Next))
	}
	writeJSON(w, http.StatusOK, out)
}
