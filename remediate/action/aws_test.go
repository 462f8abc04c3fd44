package action

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// awsConfig is a configuration with one aws target served by f.
func awsConfig(f *testharness.AWS) *config.Config {
	return &config.Config{Targets: config.Targets{AWS: []config.AWSTarget{f.Target("aws-dr", "eu-west-1")}}}
}

// runAWS builds the named action over f's configuration and runs it.
func runAWS(t *testing.T, f *testharness.AWS, name string, params map[string]any, annotations map[string]string) (Outcome, error) {
	t.Helper()
	a, err := Registry[name].New(Deps{Config: awsConfig(f)})
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
	f := testharness.AWSFake(t)
	f.AddInstance("fruitfulplanet-replica-eu", testharness.AWSInstance{Statuses: []string{"available"}, Source: "fruitfulplanet-prod"})
	f.Throttle("DescribeDBInstances", 2) // retried by the SDK's retryer
	out, err := runAWS(t, f, "aws.rds.promote_read_replica", map[string]any{"instance": "fruitfulplanet-replica-eu", "backup_retention_days": 7}, nil)
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	if n := len(f.Calls("DescribeDBInstances")); n != 3 {
		t.Errorf("DescribeDBInstances calls = %d, want 3 (two throttled, then success)", n)
	}
	p := f.Calls("PromoteReadReplica")
	if len(p) != 1 || p[0].Form.Get("DBInstanceIdentifier") != "fruitfulplanet-replica-eu" || p[0].Form.Get("BackupRetentionPeriod") != "7" {
		t.Fatalf("PromoteReadReplica requests = %+v", p)
	}
	if out.Result["source_instance"] != "fruitfulplanet-prod" || out.Result["status"] != "modifying" {
		t.Errorf("result = %v", out.Result)
	}
	// Run again: no longer a replica, so nothing is sent.
	out, err = runAWS(t, f, "aws.rds.promote_read_replica", map[string]any{"instance": "fruitfulplanet-replica-eu"}, nil)
	if err != nil || out.Result["already_promoted"] != true || len(f.Calls("PromoteReadReplica")) != 1 {
		t.Errorf("second promote = %v, %v; want a no-op", out.Result, err)
	}
}

func TestRDSPersistentServerErrorFailsClearly(t *testing.T) {
	f := testharness.AWSFake(t)
	f.AddInstance("fruitfulplanet-replica-eu", testharness.AWSInstance{Statuses: []string{"available"}, Source: "fruitfulplanet-prod"})
	f.Break("PromoteReadReplica")
	_, err := runAWS(t, f, "aws.rds.promote_read_replica", map[string]any{"instance": "fruitfulplanet-replica-eu"}, nil)
	want := "aws rds PromoteReadReplica fruitfulplanet-replica-eu: AWS answered HTTP 500 after 3 attempts InternalFailure"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if n := len(f.Calls("PromoteReadReplica")); n != 3 {
		t.Errorf("attempts = %d, want max_attempts 3", n)
	}
	if strings.Contains(err.Error(), "drguard-test-secret") || strings.Contains(err.Error(), "AKIDDRGUARDTEST") {
		t.Errorf("credentials in the error: %v", err)
	}
}

func TestRDSRestoreToPointInTime(t *testing.T) {
	f := testharness.AWSFake(t)
	latest := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	f.AddInstance("fruitfulplanet-prod", testharness.AWSInstance{Statuses: []string{"available"}, LatestRestorable: latest})
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
		out, err := runAWS(t, f, "aws.rds.restore_to_point_in_time", with("restore_time", "2025-11-20T00:00:00Z", "instance_class", "db.r6g.large"), nil)
		if err != nil {
			t.Fatal(err)
		}
		r := f.Calls("RestoreDBInstanceToPointInTime")
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
		out, err := runAWS(t, f, "aws.rds.restore_to_point_in_time", with("restore_time", "last_known_good", "margin", "10m"),
			map[string]string{LastKnownGoodAnnotation: good.Format(time.RFC3339)})
		if err != nil {
			t.Fatal(err)
		}
		r := f.Calls("RestoreDBInstanceToPointInTime")
		want := good.Add(-10 * time.Minute).Format(time.RFC3339)
		if got := r[len(r)-1].Form.Get("RestoreTime"); got != want {
			t.Errorf("RestoreTime = %s, want last known good − 10m = %s", got, want)
		}
		if out.Result["known_good_at"] != good.Format(time.RFC3339) {
			t.Errorf("result = %v", out.Result)
		}
	})
	t.Run("known_good_at param wins", func(t *testing.T) {
		_, err := runAWS(t, f, "aws.rds.restore_to_point_in_time", with("restore_time", "last_known_good", "known_good_at", "2026-01-02T03:04:05Z"),
			map[string]string{LastKnownGoodAnnotation: "2026-01-01T00:00:00Z"})
		if err != nil {
			t.Fatal(err)
		}
		r := f.Calls("RestoreDBInstanceToPointInTime")
		if got := r[len(r)-1].Form.Get("RestoreTime"); got != "2026-01-02T02:59:05Z" {
			t.Errorf("RestoreTime = %s, want known_good_at − 5m", got)
		}
	})
	t.Run("latest", func(t *testing.T) {
		if _, err := runAWS(t, f, "aws.rds.restore_to_point_in_time", with("restore_time", "latest"), nil); err != nil {
			t.Fatal(err)
		}
		r := f.Calls("RestoreDBInstanceToPointInTime")
		if got := r[len(r)-1].Form; got.Get("UseLatestRestorableTime") != "true" || got.Get("RestoreTime") != "" {
			t.Errorf("request = %v", got)
		}
	})
	n := len(f.Calls("RestoreDBInstanceToPointInTime"))
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
		if _, err := runAWS(t, f, "aws.rds.restore_to_point_in_time", tc.params, tc.annotations); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if len(f.Calls("RestoreDBInstanceToPointInTime")) != n {
		t.Error("a refused restore reached AWS")
	}
}

func TestRDSWaitAvailable(t *testing.T) {
	f := testharness.AWSFake(t)
	f.AddInstance("fruitfulplanet-restored", testharness.AWSInstance{Statuses: []string{"creating", "backing-up", "available"}, EndpointHost: "restored.rds.example"})
	out, err := runAWS(t, f, "aws.rds.wait_available", map[string]any{"instance": "fruitfulplanet-restored", "poll_interval": "10ms"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result["polls"] != 3 || out.Result["endpoint"] != "restored.rds.example" {
		t.Errorf("result = %v", out.Result)
	}
	f.AddInstance("broken", testharness.AWSInstance{Statuses: []string{"creating", "incompatible-restore"}})
	if _, err := runAWS(t, f, "aws.rds.wait_available", map[string]any{"instance": "broken", "poll_interval": "10ms"}, nil); err == nil ||
		!strings.Contains(err.Error(), "broken is incompatible-restore; it will not become available by waiting") {
		t.Errorf("failed state: %v", err)
	}
	f.AddInstance("slow", testharness.AWSInstance{Statuses: []string{"creating"}})
	a, _ := Registry["aws.rds.wait_available"].New(Deps{Config: awsConfig(f)})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = a.Run(ctx, Request{Params: map[string]any{"instance": "slow", "poll_interval": "20ms"}})
	if err == nil || !strings.Contains(err.Error(), "slow not available after") || !strings.Contains(err.Error(), "last status creating") {
		t.Errorf("timeout: %v", err)
	}
}

func TestRoute53UpsertRecord(t *testing.T) {
	f := testharness.AWSFake(t)
	f.Throttle("ChangeResourceRecordSets", 1)
	f.PendingChanges(2)
	out, err := runAWS(t, f, "aws.route53.upsert_record", map[string]any{
		"hosted_zone_id": "Z123", "name": "fruitfulplanet.com.", "type": "cname", "ttl": 60,
		"value": "dr-lb.eu-west-1.elb.amazonaws.com", "wait": true, "poll_interval": "10ms",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := f.Calls("ChangeResourceRecordSets")
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
	if len(f.Calls("GetChange")) != 3 || out.Result["status"] != "INSYNC" || out.Result["change_id"] != "/change/C0FFEE" {
		t.Errorf("wait: %d GetChange calls, result %v", len(f.Calls("GetChange")), out.Result)
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
