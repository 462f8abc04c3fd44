package config

import "fmt"

// approvers checks that every gated step can be approved by the users
// configured: a step that needs more distinct approvers than there are
// users with the approver or admin role could never run, and four-eyes
// needs at least two of them for destructive gated steps.
func (v *validator) approvers() {
	n := 0
	for _, u := range v.c.Auth.Users {
		if u.Role == RoleApprover || u.Role == RoleAdmin {
			n++
		}
	}
	gated := false
	for i, p := range v.c.Policies {
		for j, st := range p.Steps {
			if !st.Approval.Required {
				continue
			}
			gated = true
			if st.Approval.Approvals > n {
				v.ps.warnf(fmt.Sprintf("policies[%d].steps[%d].approval.approvals", i, j),
					"needs %d different approvers but only %d users have the approver or admin role: the step could never run", st.Approval.Approvals, n)
			}
		}
	}
	if gated && v.c.Auth.FourEyes && n < 2 {
		v.ps.warnf("auth.four_eyes", "four-eyes needs two different approvers for a destructive gated step, but only %d user(s) have the approver or admin role: such steps could never run", n)
	}
}
