package action

import (
	"context"
	"strings"
	"testing"
	"time"
)

// runAWS builds the named action over f's configuration and runs it.
func (f *fakeAWS) run(t *testing.T, name string, params map[string]any, annotations map[string]string) (Outcome, error) {
	t.Helper()
	a, err := Registry[name].New(Deps{Config: f.config()})
	must(t, err)
	if err := a.Validate(params); err != nil {
		t.Fatalf("%s: Validate: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.Run(ctx, Request{RunID: "run-000042", Step: "s", Policy: "region-failure", Target: "db",
		Params: jsonRound(t, params), Annotations: annotations})
}

func TestRDSPromoteReadReplica(t *testing.T) {
	f := newFakeAWS(t)
	f.instances["fruitfulplanet-replica-eu"] = &fakeInstance{status: []string{"available"}, source: "fruitfulplanet-prod"}
	f.throttle["DescribeDBInstances"] = 2 // retried by the SDK's retryer
	out, err := f.run(t, "aws.rds.promote_read_replica", map[string]any{"instance": "fruitfulplanet-replica-eu", "backup_retention_days": 7}, nil)
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	if n := len(f.calls("DescribeDBInstances")); n != 3 {
		t.Errorf("DescribeDBInstances calls = %d, want 3 (two throttled, then success)", n)
	}
	p := f.calls("PromoteReadReplica")
	if len(p) != 1 || p[0].Form.Get("DBInstanceIdentifier") != "fruitfulplanet-replica-eu" || p[0].Form.Get("BackupRetentionPeriod") != "7" {
		t.Fatalf("PromoteReadReplica requests = %+v", p)
	}
	if out.Result["source_instance"] != "fruitfulplanet-prod" || out.Result["status"] != "modifying" {
		t.Errorf("result = %v", out.Result)
	}
	// Run again: no longer a replica, so nothing is sent.
	out, err = f.run(t, "aws.rds.promote_read_replica", map[string]any{"instance": "fruitfulplanet-replica-eu"}, nil)
	if err != nil || out.Result["already_promoted"] != true || len(f.calls("PromoteReadReplica")) != 1 {
		t.Errorf("second promote = %v, %v; want a no-op", out.Result, err)
	}
}

func TestRDSPersistentServerErrorFailsClearly(t *testing.T) {
	f := newFakeAWS(t)
	f.instances["fruitfulplanet-replica-eu"] = &fakeInstance{status: []string{"available"}, source: "fruitfulplanet-prod"}
	f.broken["PromoteReadReplica"] = true
	_, err := f.run(t, "aws.rds.promote_read_replica", map[string]any{"instance": "fruitfulplanet-replica-eu"}, nil)
	want := "aws rds PromoteReadReplica fruitfulplanet-replica-eu: AWS answered HTTP 500 after 3 attempts InternalFailure"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if n := len(f.calls("PromoteReadReplica")); n != 3 {
		t.Errorf("attempts = %d, want max_attempts 3", n)
	}
	if strings.Contains(err.Error(), "drguard-test-secret") || strings.Contains(err.Error(), "AKIDDRGUARDTEST") {
		t.Errorf("credentials in the error: %v", err)
	}
}

func TestRDSRestoreToPointInTime(t *testing.T) {
	f := newFakeAWS(t)
	latest := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	f.instances["fruitfulplanet-prod"] = &fakeInstance{status: []string{"available"}, latest: latest}
	base := map[string]any{"source_instance": "fruitfulplanet-prod", "target_instance": "fruitfulplanet-restored"}
	with := func(kv ...any) map[string]any {
		p := map[string]any{}
		for k, v := range base {
			p[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p[kv[i].(string)] = kv[i+1]
		}
		return p
	}

	t.Run("explicit", func(t *testing.T) {
		out, err := f.run(t, "aws.rds.restore_to_point_in_time", with("restore_time", "2025-11-20T00:00:00Z", "instance_class", "db.r6g.large"), nil)
		if err != nil {
			t.Fatal(err)
		}
		r := f.calls("RestoreDBInstanceToPointInTime")
		got := r[len(r)-1].Form
		if got.Get("SourceDBInstanceIdentifier") != "fruitfulplanet-prod" || got.Get("TargetDBInstanceIdentifier") != "fruitfulplanet-restored" ||
			got.Get("RestoreTime") != "2025-11-20T00:00:00Z" || got.Get("DBInstanceClass") != "db.r6g.large" || got.Get("Tags.Tag.1.Value") != "run-000042" {
			t.Errorf("request = %v", got)
		}
		if out.Result["restore_time"] != "2025-11-20T00:00:00Z" || out.Result["restore_time_source"] != "explicit" {
			t.Errorf("result = %v", out.Result)
		}
	})
	t.Run("last known good from the annotation", func(t *testing.T) {
		good := latest.Add(-time.Hour)
		out, err := f.run(t, "aws.rds.restore_to_point_in_time", with("restore_time", "last_known_good", "margin", "10m"),
			map[string]string{LastKnownGoodAnnotation: good.Format(time.RFC3339)})
		if err != nil {
			t.Fatal(err)
		}
		r := f.calls("RestoreDBInstanceToPointInTime")
		want := good.Add(-10 * time.Minute).Format(time.RFC3339)
		if got := r[len(r)-1].Form.Get("RestoreTime"); got != want {
			t.Errorf("RestoreTime = %s, want last known good − 10m = %s", got, want)
		}
		if out.Result["known_good_at"] != good.Format(time.RFC3339) {
			t.Errorf("result = %v", out.Result)
		}
	})
	t.Run("known_good_at param wins", func(t *testing.T) {
		_, err := f.run(t, "aws.rds.restore_to_point_in_time", with("restore_time", "last_known_good", "known_good_at", "2026-01-02T03:04:05Z"),
			map[string]string{LastKnownGoodAnnotation: "2026-01-01T00:00:00Z"})
		if err != nil {
			t.Fatal(err)
		}
		r := f.calls("RestoreDBInstanceToPointInTime")
		if got := r[len(r)-1].Form.Get("RestoreTime"); got != "2026-01-02T02:59:05Z" {
			t.Errorf("RestoreTime = %s, want known_good_at − 5m", got)
		}
	})
	t.Run("latest", func(t *testing.T) {
		if _, err := f.run(t, "aws.rds.restore_to_point_in_time", with("restore_time", "latest"), nil); err != nil {
			t.Fatal(err)
		}
		r := f.calls("RestoreDBInstanceToPointInTime")
		if got := r[len(r)-1].Form; got.Get("UseLatestRestorableTime") != "true" || got.Get("RestoreTime") != "" {
			t.Errorf("request = %v", got)
		}
	})
	n := len(f.calls("RestoreDBInstanceToPointInTime"))
	for name, tc := range map[string]struct {
		params      map[string]any
		annotations map[string]string
		want        string
	}{
		"no known good time": {with("restore_time", "last_known_good"), nil, "drguard does not guess a restore point"},
		"after latest restorable": {with("restore_time", latest.Add(30*time.Second).Format(time.RFC3339)), nil,
			"after fruitfulplanet-prod's latest restorable time"},
		"future": {with("restore_time", "2999-01-01T00:00:00Z"), nil, "is in the future"},
	} {
		if _, err := f.run(t, "aws.rds.restore_to_point_in_time", tc.params, tc.annotations); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if len(f.calls("RestoreDBInstanceToPointInTime")) != n {
		t.Error("a refused restore reached AWS")
	}
}

func TestRDSWaitAvailable(t *testing.T) {
	f := newFakeAWS(t)
	f.instances["fruitfulplanet-restored"] = &fakeInstance{status: []string{"creating", "backing-up", "available"}, endpointHost: "restored.rds.example"}
	out, err := f.run(t, "aws.rds.wait_available", map[string]any{"instance": "fruitfulplanet-restored", "poll_interval": "10ms"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result["polls"] != 3 || out.Result["endpoint"] != "restored.rds.example" {
		t.Errorf("result = %v", out.Result)
	}
	f.instances["broken"] = &fakeInstance{status: []string{"creating", "incompatible-restore"}}
	if _, err := f.run(t, "aws.rds.wait_available", map[string]any{"instance": "broken", "poll_interval": "10ms"}, nil); err == nil ||
		!strings.Contains(err.Error(), "broken is incompatible-restore; it will not become available by waiting") {
		t.Errorf("failed state: %v", err)
	}
	f.instances["slow"] = &fakeInstance{status: []string{"creating"}}
	a, _ := Registry["aws.rds.wait_available"].New(Deps{Config: f.config()})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = a.Run(ctx, Request{Params: map[string]any{"instance": "slow", "poll_interval": "20ms"}})
	if err == nil || !strings.Contains(err.Error(), "slow not available after") || !strings.Contains(err.Error(), "last status creating") {
		t.Errorf("timeout: %v", err)
	}
}

func TestRoute53UpsertRecord(t *testing.T) {
	f := newFakeAWS(t)
	f.throttle["ChangeResourceRecordSets"] = 1
	f.changePolls = 2
	out, err := f.run(t, "aws.route53.upsert_record", map[string]any{
		"hosted_zone_id": "Z123", "name": "fruitfulplanet.com.", "type": "cname", "ttl": 60,
		"value": "dr-lb.eu-west-1.elb.amazonaws.com", "wait": true, "poll_interval": "10ms",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := f.calls("ChangeResourceRecordSets")
	if len(calls) != 2 {
		t.Fatalf("ChangeResourceRecordSets calls = %d, want 2 (one throttled)", len(calls))
	}
	c := calls[1]
	if c.Path != "/2013-04-01/hostedzone/Z123/rrset" && c.Path != "/2013-04-01/hostedzone/Z123/rrset/" {
		t.Errorf("path = %s", c.Path)
	}
	if len(c.RRSets.Changes) != 1 {
		t.Fatalf("changes = %+v", c.RRSets)
	}
	ch := c.RRSets.Changes[0]
	if ch.Action != "UPSERT" || ch.Name != "fruitfulplanet.com." || ch.Type != "CNAME" || ch.TTL != 60 ||
		len(ch.Values) != 1 || ch.Values[0] != "dr-lb.eu-west-1.elb.amazonaws.com" {
		t.Errorf("change = %+v", ch)
	}
	if !strings.Contains(c.RRSets.Comment, "run-000042") {
		t.Errorf("comment = %q", c.RRSets.Comment)
	}
	if len(f.calls("GetChange")) != 3 || out.Result["status"] != "INSYNC" || out.Result["change_id"] != "/change/C0FFEE" {
		t.Errorf("wait: %d GetChange calls, result %v", len(f.calls("GetChange")), out.Result)
	}
}

func TestAWSValidate(t *testing.T) {
	tests := []struct {
		action string
		params map[string]any
		want   string
	}{
		{"aws.rds.restore_to_point_in_time", map[string]any{"source_instance": "a", "target_instance": "b", "restore_time": "yesterday"}, "not an RFC 3339 time"},
		{"aws.rds.restore_to_point_in_time", map[string]any{"source_instance": "a", "target_instance": "b"}, `param "restore_time": is required`},
		{"aws.rds.restore_to_point_in_time", map[string]any{"source_instance": "a", "target_instance": "b", "restore_time": "last_known_good", "known_good_at": "{{ .Annotations.last_known_good }}"}, ""},
		{"aws.rds.promote_read_replica", map[string]any{"instance": "r", "backup_retention_days": 40}, "must be 0–35"},
		{"aws.rds.wait_available", map[string]any{}, `param "instance": is required`},
		{"aws.route53.upsert_record", map[string]any{"hosted_zone_id": "Z", "name": "n", "type": "MX", "value": "v"}, "not one of A, AAAA, CNAME, TXT"},
		{"aws.route53.upsert_record", map[string]any{"hosted_zone_id": "Z", "name": "n"}, `param "value": is required: (or "values")`},
		{"aws.route53.upsert_record", map[string]any{"hosted_zone_id": "Z", "name": "n", "values": []any{"a", "b"}}, "exactly one value"},
	}
	for _, tc := range tests {
		a, err := Registry[tc.action].New(Deps{})
		must(t, err)
		err = a.Validate(tc.params)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %v: Validate = %v, want %q", tc.action, tc.params, err, tc.want)
		}
	}
}
