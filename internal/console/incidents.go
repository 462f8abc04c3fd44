package console

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// incidentsPerPage is the size of a page of the incident list.
const incidentsPerPage = 50

// incidentList is the incidents page's.
type incidentList struct {
	State, Service string
	Incidents      []store.Incident
	// NextURL is the next (older) page, First the newest; empty when
	// there is none, or the list is at the start.
	NextURL, FirstURL string
}

// handleIncidents lists incidents, newest first, filtered by state and
// service, a page at a time with the incidents API's cursor.
func (c *Console) handleIncidents(w http.ResponseWriter, r *http.Request, v *view) {
	q := r.URL.Query()
	v.Title, v.Section = "Incidents", "incidents"
	data := incidentList{State: q.Get("state"), Service: q.Get("service")}
	switch data.State {
	case "", store.IncidentOpen, store.IncidentResolved:
	default:
		c.fail(w, r, v, http.StatusBadRequest, "The state filter is open, resolved or empty.")
		return
	}
	before, err := base64.RawURLEncoding.DecodeString(q.Get("cursor"))
	if err != nil {
		c.fail(w, r, v, http.StatusBadRequest, "This page's cursor is not one the console made: start from the newest incidents.")
		return
	}
	page, err := c.o.Store.IncidentPage(store.IncidentQuery{Before: string(before), Limit: incidentsPerPage, State: data.State, Service: data.Service})
	if err != nil {
		c.fail(w, r, v, http.StatusInternalServerError, "Reading the journal failed: "+err.Error())
		return
	}
	data.Incidents = page.Incidents
	link := func(cursor string) string {
		l := url.Values{}
		for k, val := range map[string]string{"state": data.State, "service": data.Service, "cursor": cursor} {
			if val != "" {
				l.Set(k, val)
			}
		}
		return "/incidents?" + l.Encode()
	}
	if page.Next != "" {
		data.NextURL = link(base64.RawURLEncoding.EncodeToString([]byte(page.Next)))
	}
	if len(before) > 0 {
		data.FirstURL = link("")
	}
	v.Data = data
	c.render(w, http.StatusOK, "incidents", v)
}

// incidentData is an incident's page's: the incident, its runs with their
// steps and approvals, and the journal position the page shows, from
// which its script follows the event stream.
type incidentData struct {
	Incident store.Incident
	Runs     []runView
	Since    uint64
}

type runView struct {
	store.Run
	Steps []stepView
}

type stepView struct {
	store.Step
	Approval *store.Approval
}

func (c *Console) loadIncident(id string) (incidentData, error) {
	in, runs, err := c.o.Engine.Incident(id)
	if err != nil {
		return incidentData{}, err
	}
	d := incidentData{Incident: in}
	err = c.o.Store.View(func(tx *store.Tx) error {
		var err error
		if d.Since, err = tx.LastAuditSeq(); err != nil {
			return err
		}
		for _, run := range runs {
			rv := runView{Run: run}
			for _, st := range run.Steps {
				sv := stepView{Step: st}
				if st.ApprovalID != "" {
					a, err := tx.Approval(st.ApprovalID)
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					if err == nil {
						sv.Approval = &a
					}
				}
				rv.Steps = append(rv.Steps, sv)
			}
			d.Runs = append(d.Runs, rv)
		}
		return nil
	})
	return d, err
}

// handleIncident shows one incident; its script keeps the timeline and
// runs live.
func (c *Console) handleIncident(w http.ResponseWriter, r *http.Request, v *view) {
	d, err := c.loadIncident(r.PathValue("id"))
	v.Title, v.Section = "Incident "+r.PathValue("id"), "incidents"
	if err != nil {
		c.fail(w, r, v, statusOf(err), err.Error())
		return
	}
	v.Data = d
	c.render(w, http.StatusOK, "incident", v)
}

// handleIncidentLive renders the live part of an incident's page (timeline
// and runs) alone, for the page's script to swap in.
func (c *Console) handleIncidentLive(w http.ResponseWriter, r *http.Request, v *view) {
	d, err := c.loadIncident(r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	v.Data = d
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Journal-Seq", strconv.FormatUint(d.Since, 10))
	if err := c.pages["incident"].ExecuteTemplate(w, "live", v); err != nil {
		c.log.Error("console: rendering an incident's live part failed", "err", err)
	}
}
