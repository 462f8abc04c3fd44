package action

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
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

var _ Action = (*Route53UpsertRecord)(nil)

// NewRoute53UpsertRecord builds the aws.route53.upsert_record action.
func NewRoute53UpsertRecord(d Deps) (Action, error) { return &Route53UpsertRecord{newAWSBase(d)}, nil }

// Info declares the upsert destructive (it moves traffic, and the old
// record is gone) and idempotent (an UPSERT of the same record is a no-op).
func (*Route53UpsertRecord) Info() Info { return Info{Destructive: true, Idempotent: true} }

type recordSpec struct {
	zone, name, typ, comment string
	values                   []string
	ttl                      int
	wait                     bool
	every                    time.Duration
}

// Validate checks the unrendered params.
func (*Route53UpsertRecord) Validate(params map[string]any) error {
	if err := checkKnown(params, "target", "hosted_zone_id", "name", "type", "ttl", "value", "values", "comment", "wait", "poll_interval"); err != nil {
		return err
	}
	_, err := recordParams(params, true)
	return err
}

func recordParams(params map[string]any, unrendered bool) (recordSpec, error) {
	var s recordSpec
	var err error
	if s.zone, err = requireString(params, "hosted_zone_id"); err != nil {
		return s, err
	}
	if s.name, err = requireString(params, "name"); err != nil {
		return s, err
	}
	if s.typ, err = stringParam(params, "type", DefaultRecordType); err != nil {
		return s, err
	}
	s.typ = strings.ToUpper(strings.TrimSpace(s.typ))
	if !route53Types[s.typ] && !(unrendered && isTemplate(s.typ)) {
		return s, fmt.Errorf(`param "type": %q is not one of A, AAAA, CNAME, TXT`, s.typ)
	}
	if s.ttl, err = intParam(params, "ttl", DefaultRecordTTL, unrendered); err != nil {
		return s, err
	}
	if s.ttl < 0 || s.ttl > 2147483647 {
		return s, fmt.Errorf(`param "ttl" must be 0–2147483647 seconds, got %d`, s.ttl)
	}
	one, err := stringParam(params, "value", "")
	if err != nil {
		return s, err
	}
	if s.values, err = stringListParam(params, "values"); err != nil {
		return s, err
	}
	if one != "" {
		s.values = append([]string{one}, s.values...)
	}
	if len(s.values) == 0 {
		return s, errors.New(`param "value" (or "values") is required: what the record points to`)
	}
	if s.typ == "CNAME" && len(s.values) > 1 {
		return s, errors.New("a CNAME record has exactly one value")
	}
	if s.comment, err = stringParam(params, "comment", ""); err != nil {
		return s, err
	}
	if s.wait, err = boolParam(params, "wait", false, unrendered); err != nil {
		return s, err
	}
	if s.every, err = durationParam(params, "poll_interval", DefaultRoute53PollInterval, unrendered); err == nil && s.every <= 0 {
		err = errors.New(`param "poll_interval" must be positive`)
	}
	return s, err
}

// Run submits the UPSERT and, with wait, polls until Route 53 reports the
// change INSYNC on its name servers.
func (a *Route53UpsertRecord) Run(ctx context.Context, req Request) (Outcome, error) {
	s, err := recordParams(req.Params, false)
	if err != nil {
		return Outcome{}, err
	}
	t, err := a.awsTarget(req)
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
	records := make([]types.ResourceRecord, len(s.values))
	for i, v := range s.values {
		records[i] = types.ResourceRecord{Value: aws.String(v)}
	}
	comment := s.comment
	if comment == "" {
		comment = fmt.Sprintf("drguard %s step %s (policy %s)", req.RunID, req.Step, req.Policy)
	}
	about := fmt.Sprintf("%s %s in zone %s", s.typ, s.name, s.zone)
	out, err := c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(s.zone),
		ChangeBatch: &types.ChangeBatch{Comment: aws.String(comment), Changes: []types.Change{{
			Action: types.ChangeActionUpsert,
			ResourceRecordSet: &types.ResourceRecordSet{
				Name: aws.String(s.name), Type: types.RRType(s.typ), TTL: aws.Int64(int64(s.ttl)), ResourceRecords: records,
			},
		}}},
	})
	if err != nil {
		return Outcome{}, awsError(ctx, "route53 ChangeResourceRecordSets", about, err)
	}
	anyValues := make([]any, len(s.values))
	for i, v := range s.values {
		anyValues[i] = v
	}
	res := map[string]any{"hosted_zone_id": s.zone, "name": s.name, "type": s.typ, "ttl": s.ttl, "values": anyValues}
	if out.ChangeInfo != nil {
		res["change_id"], res["status"] = aws.ToString(out.ChangeInfo.Id), string(out.ChangeInfo.Status)
	}
	a.log.Warn("route53 record upserted", "run", req.RunID, "step", req.Step, "record", about, "values", s.values)
	if s.wait && res["status"] != string(types.ChangeStatusInsync) {
		id, _ := res["change_id"].(string)
		for res["status"] != string(types.ChangeStatusInsync) {
			if err := sleepCtx(ctx, s.every); err != nil {
				return Outcome{Result: res}, fmt.Errorf("aws route53: change %s for %s not INSYNC before the step's timeout (status %v)", id, about, res["status"])
			}
			ch, err := c.GetChange(ctx, &route53.GetChangeInput{Id: aws.String(id)})
			if err != nil {
				return Outcome{Result: res}, awsError(ctx, "route53 GetChange", id, err)
			}
			if ch.ChangeInfo != nil {
				res["status"] = string(ch.ChangeInfo.Status)
			}
		}
	}
	return Outcome{
		Output: fmt.Sprintf("%s → %s (TTL %ds): change %v %v", about, strings.Join(s.values, ", "), s.ttl, res["change_id"], res["status"]),
		Result: res,
	}, nil
}
