package pitr

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/metrics"
)

// fakeRDS answers DescribeDBInstances (the Query protocol) for one
// instance, and DBInstanceNotFound for any other.
func fakeRDS(t *testing.T, instance string, latest time.Time) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		calls.Add(1)
		if form.Get("Action") != "DescribeDBInstances" || form.Get("DBInstanceIdentifier") != instance {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>DBInstanceNotFound</Code><Message>DBInstance %s not found.</Message></Error><RequestId>1</RequestId></ErrorResponse>`, form.Get("DBInstanceIdentifier"))
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<DescribeDBInstancesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <DescribeDBInstancesResult><DBInstances><DBInstance>
    <DBInstanceIdentifier>%s</DBInstanceIdentifier>
    <LatestRestorableTime>%s</LatestRestorableTime>
  </DBInstance></DBInstances></DescribeDBInstancesResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</DescribeDBInstancesResponse>`, instance, latest.Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// pitrConfig is a plan whose service "shop" falls back on PITR of
// instances, all on the aws target at rdsURL.
func pitrConfig(t *testing.T, rdsURL string, instances ...string) *config.Config {
	t.Helper()
	sources := ""
	for _, i := range instances {
		sources += fmt.Sprintf("      - {type: pitr, target: aws, rds_instance: %s}\n", i)
	}
	yml := fmt.Sprintf(`auth: {webhook: {bearer_token: test-webhook-token}}
objectives:
  shop:
    rpo: 1h
    rto: 4h
    recovery_sources:
%stargets:
  aws: [{name: aws, region: eu-west-1, endpoint: %q}]
`, sources, rdsURL)
	c, err := config.Parse([]byte(yml), filepath.Join(t.TempDir(), "c.yaml"), config.Known{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRefreshReportsLatestRestorableTime reads RDS's LatestRestorableTime
// (a fake RDS at the HTTP level) and reports it as the service's pitr
// recovery point, which the objectives export as its exposure; an
// instance RDS does not know reports nothing.
func TestRefreshReportsLatestRestorableTime(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	latest := time.Now().Add(-5 * time.Minute).UTC().Truncate(time.Second)
	rds, calls := fakeRDS(t, "shop-prod", latest)
	cfg := pitrConfig(t, rds.URL, "shop-prod", "gone")
	objectives := metrics.NewObjectives(prometheus.NewRegistry(), cfg.Objectives)
	var reported []string
	p := New(Options{Config: cfg, Report: func(service, instance string, t time.Time) {
		reported = append(reported, fmt.Sprintf("%s/%s@%s", service, instance, t.Format(time.RFC3339)))
		objectives.ObservePITR(service, instance, t)
	}})
	p.Refresh(context.Background())
	if want := "shop/shop-prod@" + latest.Format(time.RFC3339); len(reported) != 1 || reported[0] != want {
		t.Errorf("reported %v, want [%s]", reported, want)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("DescribeDBInstances calls = %d, want one per instance", n)
	}
	if got, ok := objectives.Exposure("shop", metrics.SourcePITR); !ok || got < 5*time.Minute || got > 5*time.Minute+5*time.Second {
		t.Errorf("pitr exposure = %v (%v), want about 5m", got, ok)
	}
}

// TestRunWithoutSources returns at once when no objective names a pitr
// source, asking RDS nothing.
func TestRunWithoutSources(t *testing.T) {
	rds, calls := fakeRDS(t, "shop-prod", time.Now())
	p := New(Options{Config: pitrConfig(t, rds.URL), Report: func(string, string, time.Time) { t.Error("reported") }})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil || ctx.Err() != nil {
		t.Errorf("Run = %v, context %v: want it to return at once", err, ctx.Err())
	}
	if calls.Load() != 0 {
		t.Errorf("RDS was asked %d times", calls.Load())
	}
}
