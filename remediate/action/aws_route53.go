package action

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/params"
)

// Defaults of aws.route53.upsert_record.
const (
	DefaultRecordTTL           = 60
	DefaultRecordType          = "CNAME"
	DefaultRoute53PollInterval = 10 * time.Second
)

// route53Types are the record types upsert_record writes.
var route53Types = map[string]bool{"A": true, "AAAA": true, "CNAME": true, "TXT": true}

// Route53UpsertRecord creates or replaces a DNS record with an UPSERT
// change: the plan's `aws route53 change-resource-record-sets` that fails
// traffic over to the DR region.
//
// Params: hosted_zone_id, name (required), value or values (required),
// type (A, AAAA, CNAME or TXT; default CNAME), ttl (default 60), comment,
// wait (poll GetChange until INSYNC; default false), poll_interval
// (default 10s), target.
//
// Result: hosted_zone_id, name, type, ttl, values, change_id, status.
type Route53UpsertRecord struct{ awsBase }

// upsertRecordInfo declares the upsert destructive (it moves traffic, and
// the old record is gone) and idempotent (an UPSERT of the same record is
// a no-op).
var upsertRecordInfo = Info{Destructive: true, Idempotent: true}

// recordParams is the params of aws.route53.upsert_record.
type recordParams struct {
	awsCommon
	Zone    string   `param:"hosted_zone_id"`
	Name    string   `param:"name"`
	Type    string   `param:"type"`
	TTL     int      `param:"ttl"`
	Value   string   `param:"value"`
	Values  []string `param:"values"`
	Comment string   `param:"comment"`
	// Wait waits for the change to reach Route 53's name servers (the
	// SDK's ResourceRecordSetsChanged waiter).
	Wait         bool           `param:"wait"`
	PollInterval model.Duration `param:"poll_interval"`
}

func (s *recordParams) defaults() {
	s.Type, s.TTL, s.PollInterval = DefaultRecordType, DefaultRecordTTL, model.Duration(DefaultRoute53PollInterval)
}

func (s *recordParams) check(t params.Templates) error {
	switch {
	case strings.TrimSpace(s.Zone) == "":
		return params.Required("hosted_zone_id", "")
	case strings.TrimSpace(s.Name) == "":
		return params.Required("name", "")
	}
	s.Type = strings.ToUpper(strings.TrimSpace(s.Type))
	if !route53Types[s.Type] && t.Literal("type") {
		return params.Errorf("type", "%q is not one of A, AAAA, CNAME, TXT", s.Type)
	}
	if s.TTL < 0 {
		return params.Errorf("ttl", "must be 0–2147483647 seconds, got %d", s.TTL)
	}
	if s.Value != "" {
		s.Values = append([]string{s.Value}, s.Values...)
		s.Value = ""
	}
	if len(s.Values) == 0 {
		return params.Required("value", `(or "values") what the record points to`)
	}
	if s.Type == "CNAME" && len(s.Values) > 1 {
		return params.Errorf("values", "a CNAME record has exactly one value")
	}
	if s.PollInterval <= 0 && t.Literal("poll_interval") {
		return params.Errorf("poll_interval", "must be positive")
	}
	return nil
}

func newRoute53UpsertRecord(d Deps) (RunFunc[recordParams], error) {
	return (&Route53UpsertRecord{newAWSBase(d)}).run, nil
}

// run submits the UPSERT and, with wait, waits with the SDK's waiter until
// Route 53 reports the change INSYNC on its name servers.
func (a *Route53UpsertRecord) run(ctx context.Context, req Request, s *recordParams) (Outcome, error) {
	t, err := a.awsTarget(req, s.Target)
	if err != nil {
		return Outcome{}, err
	}
	sdk, err := a.sdkConfig(ctx, t)
	if err != nil {
		return Outcome{}, err
	}
	c := route53.NewFromConfig(sdk, func(o *route53.Options) {
		if t.Endpoint != "" {
			o.BaseEndpoint = aws.String(t.Endpoint)
		}
	})
	records := make([]types.ResourceRecord, len(s.Values))
	for i, v := range s.Values {
		records[i] = types.ResourceRecord{Value: aws.String(v)}
	}
	comment := s.Comment
	if comment == "" {
		comment = fmt.Sprintf("drguard %s step %s (policy %s)", req.RunID, req.Step, req.Policy)
	}
	about := fmt.Sprintf("%s %s in zone %s", s.Type, s.Name, s.Zone)
	out, err := c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(s.Zone),
		ChangeBatch: &types.ChangeBatch{Comment: aws.String(comment), Changes: []types.Change{{
			Action: types.ChangeActionUpsert,
			ResourceRecordSet: &types.ResourceRecordSet{
				Name: aws.String(s.Name), Type: types.RRType(s.Type), TTL: aws.Int64(int64(s.TTL)), ResourceRecords: records,
			},
		}}},
	})
	if err != nil {
		return Outcome{}, awsError(ctx, "route53 ChangeResourceRecordSets", about, err)
	}
	anyValues := make([]any, len(s.Values))
	for i, v := range s.Values {
		anyValues[i] = v
	}
	res := map[string]any{"hosted_zone_id": s.Zone, "name": s.Name, "type": s.Type, "ttl": s.TTL, "values": anyValues}
	if out.ChangeInfo != nil {
		res["change_id"], res["status"] = aws.ToString(out.ChangeInfo.Id), string(out.ChangeInfo.Status)
	}
	a.log.Warn("route53 record upserted", "run", req.RunID, "step", req.Step, "record", about, "values", s.Values)
	if s.Wait && res["status"] != string(types.ChangeStatusInsync) {
		if err := waitInsync(ctx, c, res, time.Duration(s.PollInterval)); err != nil {
			return Outcome{Result: res}, fmt.Errorf("aws route53: change %v for %s: %w", res["change_id"], about, err)
		}
	}
	return Outcome{
		Output: fmt.Sprintf("%s → %s (TTL %ds): change %v %v", about, strings.Join(s.Values, ", "), s.TTL, res["change_id"], res["status"]),
		Result: res,
	}, nil
}

// waitInsync waits with route53.NewResourceRecordSetsChangedWaiter until
// the change in res is INSYNC, and records its status in res.
func waitInsync(ctx context.Context, c *route53.Client, res map[string]any, every time.Duration) error {
	id, _ := res["change_id"].(string)
	waiter := route53.NewResourceRecordSetsChangedWaiter(c, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay, o.MaxDelay = every, every
		retryable := o.Retryable
		o.Retryable = func(ctx context.Context, in *route53.GetChangeInput, out *route53.GetChangeOutput, err error) (bool, error) {
			if out != nil && out.ChangeInfo != nil {
				res["status"] = string(out.ChangeInfo.Status)
			}
			return retryable(ctx, in, out, err)
		}
	})
	_, err := waiter.WaitForOutput(ctx, &route53.GetChangeInput{Id: aws.String(id)}, waitBudget(ctx))
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && isAPIError(err):
		return awsError(ctx, "route53 GetChange", id, err)
	}
	return fmt.Errorf("not INSYNC before the step's timeout (status %v)", res["status"])
}

// preflightRoute53 checks that the hosted zone exists (GetHostedZone).
func preflightRoute53(d Deps) PreflightFunc[recordParams] {
	b := newAWSBase(d)
	return func(ctx context.Context, req Request, s *recordParams) Preflight {
		var pf Preflight
		t, sdk, ok := b.preflightCredentials(ctx, req, s.awsCommon, &pf)
		if !ok {
			return pf
		}
		c := route53.NewFromConfig(sdk, func(o *route53.Options) {
			if t.Endpoint != "" {
				o.BaseEndpoint = aws.String(t.Endpoint)
			}
		})
		out, err := c.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(s.Zone)})
		about := t.Name + ": hosted zone " + s.Zone
		if preflightCall(ctx, &pf, "route53 GetHostedZone", about, "aws route53 hosted zone "+s.Zone, err) && out.HostedZone != nil {
			pf.pass("record", s.Name, "zone %s would get %s %s", aws.ToString(out.HostedZone.Name), s.Type, s.Name)
		}
		return pf
	}
}
