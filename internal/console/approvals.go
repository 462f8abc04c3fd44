package console

import (
	"net/http"

	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// approvalsData is the approvals page's.
type approvalsData struct {
	Pending []store.Approval
	// Decided is the approval the user just decided, as it now stands.
	Decided *store.Approval
}

// handleApprovals lists the pending approvals, oldest first, with what a
// decision needs: the step, why, its rendered parameters and their hash,
// the data at risk, who approved so far and how many more must, and the
// expiry.
func (c *Console) handleApprovals(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Section = "Approvals", "approvals"
	pending, err := c.o.Engine.PendingApprovals()
	if err != nil {
		c.fail(w, r, v, http.StatusInternalServerError, "Reading the pending approvals failed: "+err.Error())
		return
	}
	d := approvalsData{Pending: pending}
	if id := r.URL.Query().Get("decided"); id != "" {
		_ = c.o.Store.View(func(tx *store.Tx) error {
			if a, err := tx.Approval(id); err == nil {
				d.Decided = &a
			}
			return nil
		})
	}
	v.Data = d
	c.render(w, http.StatusOK, "approvals", v)
}

// handleDecide records the signed-in approver's decision, bound to the
// parameters hash the page showed.
func (c *Console) handleDecide(approve bool) func(http.ResponseWriter, *http.Request, *view, session) {
	return func(w http.ResponseWriter, r *http.Request, v *view, _ session) {
		id := r.PathValue("id")
		a, err := c.o.Engine.Decide(r.Context(), id, server.Decision{
			Approve: approve, Actor: v.User.Name, Identity: v.User, Remote: r.RemoteAddr,
			Comment: r.PostFormValue("comment"), ParamsHash: r.PostFormValue("paramsHash"),
		})
		if err != nil {
			c.fail(w, r, v, statusOf(err), err.Error())
			return
		}
		http.Redirect(w, r, "/approvals?decided="+a.ID, http.StatusSeeOther)
	}
}

// handlePause turns the kill switch on or off.
func (c *Console) handlePause(paused bool) func(http.ResponseWriter, *http.Request, *view, session) {
	return func(w http.ResponseWriter, r *http.Request, v *view, _ session) {
		if err := c.o.Engine.SetPaused(r.Context(), paused, v.User.Name, r.RemoteAddr); err != nil {
			c.fail(w, r, v, statusOf(err), err.Error())
			return
		}
		http.Redirect(w, r, localPath(r.PostFormValue("next"), "/"), http.StatusSeeOther)
	}
}
