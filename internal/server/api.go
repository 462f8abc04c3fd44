package server

import (
	"encoding/json"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// decisionBody is the optional body of an approve or reject request.
type decisionBody struct {
	Comment    string `json:"comment"`
	ParamsHash string `json:"paramsHash"`
}

// approvalView is an approval as the API shows it: the record, and how
// far it is from being decided.
type approvalView struct {
	store.Approval
	// StillNeeded is how many more approvals the step needs.
	StillNeeded int `json:"stillNeeded"`
	// ApprovedBy are the people who approved so far.
	ApprovedBy []string `json:"approvedBy"`
	// Status says it in words: "1 more approval needed".
	Status string `json:"status"`
}

func viewApproval(a store.Approval) approvalView {
	v := approvalView{Approval: a, StillNeeded: a.StillNeeded(), ApprovedBy: []string{}}
	for _, vote := range a.Votes {
		v.ApprovedBy = append(v.ApprovedBy, vote.Actor)
	}
	v.Status = string(a.State)
	if a.State == store.ApprovalPending {
		v.Status = a.Outstanding()
	}
	return v
}

func (s *Server) handleListApprovals(w http.ResponseWriter, r *http.Request) {
	pending, err := s.o.Engine.PendingApprovals()
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	views := make([]approvalView, 0, len(pending))
	for _, a := range pending {
		views = append(views, viewApproval(a))
	}
	if wantsHTML(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = approvalsPage.Execute(w, views)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": views})
}

func (s *Server) handleDecide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readDecision(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		id := identity(r)
		a, err := s.o.Engine.Decide(r.Context(), r.PathValue("id"), Decision{
			Approve: approve, Actor: id.Name, Identity: id, Remote: r.RemoteAddr,
			Comment: body.Comment, ParamsHash: body.ParamsHash,
		})
		if err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		if wantsHTML(r) {
			http.Redirect(w, r, "/remediate", http.StatusSeeOther)
			return
		}
		writeJSON(w, http.StatusOK, viewApproval(a))
	}
}

// readDecision accepts JSON, a form, or an empty body.
func readDecision(r *http.Request) (decisionBody, error) {
	var b decisionBody
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			return b, err
		}
		return decisionBody{Comment: r.PostForm.Get("comment"), ParamsHash: r.PostForm.Get("paramsHash")}, nil
	default:
		raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return b, err
		}
		if len(strings.TrimSpace(string(raw))) == 0 {
			return b, nil
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return b, err
		}
		return b, nil
	}
}

func (s *Server) handleIncident(w http.ResponseWriter, r *http.Request) {
	in, runs, err := s.o.Engine.Incident(r.PathValue("id"))
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	if runs == nil {
		runs = []store.Run{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": in, "runs": runs})
}

func (s *Server) handlePause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.o.Engine.SetPaused(r.Context(), paused, identity(r).Name, r.RemoteAddr); err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"paused": paused})
	}
}

func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

var approvalsPage = template.Must(template.New("approvals").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>drguard: pending approvals</title>
<link rel="stylesheet" href="/static/console.css">
</head><body class="plain"><h1>Pending approvals</h1>
<p>The <a href="/approvals">console</a> shows the same with a sign-in instead of basic auth.</p>
{{if not .}}<p>Nothing is waiting for a decision.</p>{{else}}
<table><tr><th>ID</th><th>What</th><th>Why</th><th>Parameters</th><th>Data at risk</th><th>Approvals</th><th>Expires</th><th>Decide</th></tr>
{{range .}}<tr><td>{{.ID}}</td><td>{{.Policy}} / {{.Step}} ({{.Action}}) on {{.Target}}</td><td>{{.Why}}</td>
<td><pre>{{range $k, $v := .Params}}{{$k}}: {{$v}}
{{end}}</pre><code>{{.ParamsHash}}</code></td><td>{{.DataAtRisk}}</td>
<td>{{.Status}}{{if .ApprovedBy}}; approved by {{range $i, $a := .ApprovedBy}}{{if $i}}, {{end}}{{$a}}{{end}}{{end}}</td>
<td>{{.ExpiresAt.Format "2006-01-02 15:04:05 MST"}}</td>
<td><form method="post" action="/remediate/{{.ID}}/approve"><input type="hidden" name="paramsHash" value="{{.ParamsHash}}"><label>Comment <input name="comment"></label><button>Approve</button></form>
<form method="post" action="/remediate/{{.ID}}/reject"><input type="hidden" name="paramsHash" value="{{.ParamsHash}}"><label>Comment <input name="comment"></label><button>Reject</button></form></td></tr>
{{end}}</table>{{end}}</body></html>
`))
