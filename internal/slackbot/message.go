package slackbot

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/fruitfulplanet/drguard/internal/params"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// Action IDs of the buttons, and the block that holds them.
const (
	actionApprove = "drguard_approve"
	actionReject  = "drguard_reject"
	blockDecide   = "drguard_decide"
)

// buttonValue is what a button carries: the approval and the hash of the
// parameters the message shows, so that a press decides exactly that.
func buttonValue(a store.Approval) string { return a.ID + "|" + a.ParamsHash }

func parseValue(v string) (id, hash string, ok bool) {
	id, hash, ok = strings.Cut(v, "|")
	return id, hash, ok && id != "" && hash != ""
}

// esc escapes what Slack's mrkdwn gives meaning to (&, <, >), so that
// alert labels and parameters show as they are and never form links or
// mentions.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// slackDate formats t as Slack shows dates in the reader's time zone, with
// a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// shown is what a message shows of an approval: it is updated when this
// changes.
func shown(a store.Approval) string {
	voters := make([]string, len(a.Votes))
	for i, v := range a.Votes {
		voters[i] = v.Actor
	}
	return string(a.State) + "|" + strings.Join(voters, ",") + "|" + a.DecidedBy
}

// messageFor renders an approval as Block Kit: the step's facts, then the
// buttons while it is pending, or who decided what once it is not. link is
// the console's page of the approval ("" without server.external_url).
func messageFor(a store.Approval, link string) (string, []slack.Block) {
	title := fmt.Sprintf("Approval needed: %s (%s) on %s", a.Step, a.Action, a.Target)
	if a.State != store.ApprovalPending {
		title = fmt.Sprintf("Approval %s: %s (%s) on %s", a.State, a.Step, a.Action, a.Target)
	}
	title = esc(title[:min(len(title), 140)]) // Slack's limit for a header is 150
	risk := a.DataAtRisk
	if risk == "" {
		risk = "not stated"
	}
	incident := esc(a.IncidentID)
	if link != "" {
		incident = fmt.Sprintf("<%s/incidents/%s|%s>", link, a.IncidentID, esc(a.IncidentID))
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain(title)),
		slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*Why:* %s\n*Data at risk:* %s\n*Incident:* %s, run %s", esc(a.Why), esc(risk), incident, esc(a.RunID))), nil, nil),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{
			mrkdwn("*Policy*\n" + esc(a.Policy)),
			mrkdwn("*Service*\n" + esc(orDash(a.Service))),
			mrkdwn("*Requested by*\n" + esc(a.RequestedBy)),
			mrkdwn("*Expires*\n" + slackDate(a.ExpiresAt)),
			mrkdwn(fmt.Sprintf("*Approvals*\n%d of %d", len(a.Votes), max(a.Required, 1))),
			mrkdwn("*Parameters hash*\n`" + esc(a.ParamsHash[:min(len(a.ParamsHash), 16)]) + "`"),
		}, nil),
		slack.NewSectionBlock(mrkdwn("*Parameters*\n```"+esc(params.Lines(a.Params))+"```"), nil, nil),
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(status(a)), nil, nil))
	if a.State == store.ApprovalPending {
		confirm := func(verb string) *slack.ConfirmationBlockObject {
			return slack.NewConfirmationBlockObject(plain(verb+" this step?"),
				mrkdwn(fmt.Sprintf("%s *%s* (%s) on *%s*. Data at risk: %s", verb, esc(a.Step), esc(a.Action), esc(a.Target), esc(risk))),
				plain(verb), plain("Cancel"))
		}
		elements := []slack.BlockElement{
			slack.NewButtonBlockElement(actionApprove, buttonValue(a), plain("Approve")).WithStyle(slack.StylePrimary).WithConfirm(confirm("Approve")),
			slack.NewButtonBlockElement(actionReject, buttonValue(a), plain("Reject")).WithStyle(slack.StyleDanger).WithConfirm(confirm("Reject")),
		}
		if link != "" {
			elements = append(elements, slack.NewButtonBlockElement("drguard_open", "open", plain("Open in drguard")).WithURL(link+"/approvals#"+a.ID))
		}
		blocks = append(blocks, slack.NewActionBlock(blockDecide, elements...))
	}
	return title + " — " + status(a), blocks
}

// status says where the approval stands and who decided.
func status(a store.Approval) string {
	voters := make([]string, len(a.Votes))
	for i, v := range a.Votes {
		voters[i] = v.Actor
	}
	switch a.State {
	case store.ApprovalPending:
		if len(voters) == 0 {
			return "Waiting for a decision: " + a.Outstanding() + "."
		}
		return fmt.Sprintf("Approved so far by %s; %s.", esc(strings.Join(voters, ", ")), a.Outstanding())
	case store.ApprovalApproved:
		return fmt.Sprintf(":white_check_mark: *Approved* by %s at %s.", esc(strings.Join(voters, ", ")), slackDate(a.DecidedAt))
	case store.ApprovalRejected:
		s := fmt.Sprintf(":x: *Rejected* by %s at %s", esc(a.DecidedBy), slackDate(a.DecidedAt))
		if a.Comment != "" {
			s += ": " + esc(a.Comment)
		}
		return s + "."
	case store.ApprovalExpired:
		return fmt.Sprintf(":hourglass: *Expired* at %s without a decision: the step did not run.", slackDate(a.ExpiresAt))
	}
	return fmt.Sprintf("*%s*: the step will not run (its alert resolved or its run ended).", esc(string(a.State)))
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
