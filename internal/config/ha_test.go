package config

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// TestHADefaults: the lease defaults to Patroni-like timings, a watchdog to
// a region failure missing after twice its repeat interval plus five
// minutes, a corroboration to a 10m window.
func TestHADefaults(t *testing.T) {
	c := mustParse(t, webhookAuth+`storage: {type: postgres, dsn: "postgres://drguard@journal.example/drguard"}
watchdogs:
  - name: primary
    matchers: ['alertname="Watchdog"']
policies:
  - name: p
    matchers: ['alertname="X"']
    corroborate:
      requires: ['{probe="app"}']
    steps:
      - action: exec
        params: {argv: [echo, hi]}
`)
	if l := c.Storage.Lease; l.TTL != DefaultLeaseTTL || l.RenewInterval != DefaultLeaseRenewInterval || l.RenewDeadline != DefaultLeaseRenewDeadline {
		t.Errorf("lease %+v, want 20s/5s/15s", l)
	}
	w := c.Watchdogs[0]
	if w.RepeatInterval != model.Duration(time.Minute) || w.MissingAfter != model.Duration(7*time.Minute) || w.Scenario != "region_failure" || w.Severity != "critical" {
		t.Errorf("watchdog %+v, want repeat 1m, missing after 7m, region_failure, critical", w)
	}
	if got := c.Policies[0].Corroborate.Window; got != DefaultCorroborationWindow {
		t.Errorf("corroboration window %s, want %s", got, DefaultCorroborationWindow)
	}
	short := mustParse(t, webhookAuth+minimalPolicy+"storage: {lease: {ttl: 3s}}\n").Storage.Lease
	if short.RenewInterval != model.Duration(750*time.Millisecond) || short.RenewDeadline != model.Duration(2250*time.Millisecond) {
		t.Errorf("a 3s ttl's lease %+v, want renewals every 750ms and a 2.25s deadline", short)
	}
}

// TestHAProblems lists what check refuses or warns about in the lease,
// watchdogs and corroboration, each at its line.
func TestHAProblems(t *testing.T) {
	cases := []struct {
		name, yml string
		errors    []string
		warnings  []string
	}{
		{name: "renew deadline not before the ttl", yml: "storage: {lease: {ttl: 10s, renew_deadline: 10s}}\n",
			errors: []string{"storage.lease.renew_deadline: must be greater than 0 and shorter than the ttl 10s"}},
		{name: "renew interval not before the deadline", yml: "storage: {lease: {ttl: 10s, renew_interval: 8s, renew_deadline: 8s}}\n",
			errors: []string{"storage.lease.renew_interval: must be greater than 0 and shorter than renew_deadline 8s"}},
		{name: "ttl under a second", yml: "storage: {lease: {ttl: 500ms}}\n", errors: []string{"storage.lease.ttl: must be at least 1s"}},
		{name: "a short ttl on the postgres journal",
			yml:      "storage: {type: postgres, dsn: 'postgres://j@journal.example/j', lease: {ttl: 5s}}\n",
			warnings: []string{"storage.lease.ttl: a ttl of 5s is short"}},
		{name: "a watchdog missing within its repeat interval",
			yml:    "watchdogs:\n  - {name: w, matchers: ['alertname=\"Watchdog\"'], repeat_interval: 5m, missing_after: 5m}\n",
			errors: []string{"watchdogs[0].missing_after: 5m is not longer than the repeat interval 5m"}},
		{name: "a watchdog too tight",
			yml:      "watchdogs:\n  - {name: w, matchers: ['alertname=\"Watchdog\"'], repeat_interval: 1m, missing_after: 2m}\n",
			warnings: []string{"watchdogs[0].missing_after: 2m is too tight for a repeat interval of 1m", "2 × repeat_interval + 1m"}},
		{name: "a watchdog without matchers, twice the name",
			yml:    "watchdogs:\n  - {name: w, matchers: ['alertname=\"W\"']}\n  - {name: w, matchers: ['a=~\"(\"'], labels: {bad-name: x}}\n",
			errors: []string{`duplicate watchdog name "w"`, `watchdogs[1].matchers[0]: invalid matcher`, `"bad-name" is not a valid label name`}},
		{name: "corroboration without requirements",
			yml: `policies:
  - name: p
    matchers: ['alertname="X"']
    corroborate: {window: 0s, requires: []}
    steps: [{action: exec, params: {argv: [echo]}}]
`,
			errors: []string{"policies[0].corroborate.requires: at least one matcher set is required"}},
		{name: "corroboration with a bad matcher set",
			yml: `policies:
  - name: p
    matchers: ['alertname="X"']
    corroborate: {requires: ['{probe=~"("}']}
    steps: [{action: exec, params: {argv: [echo]}}]
`,
			errors: []string{`test.yaml:7: policies[0].corroborate.requires[0]: invalid matchers`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yml := webhookAuth + tc.yml
			if len(tc.errors) == 0 {
				c := mustParse(t, yml)
				wantAll(t, c.Warnings().Error(), tc.warnings...)
				return
			}
			ps := parseErr(t, yml, knownExecHTTP())
			wantAll(t, ps.Errors().Error(), tc.errors...)
		})
	}
}
