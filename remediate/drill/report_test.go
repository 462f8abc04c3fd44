package drill

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// TestInjectionReportEnded: every injection step, succeeded or failed, is
// journaled with the time it ended, and the report's Injection table
// shows that time in its "ended" column.
func TestInjectionReportEnded(t *testing.T) {
	sleep := config.Step{Name: "slow", Action: "exec", Params: map[string]any{"argv": []any{"sleep", "0.2"}}}
	fail := config.Step{Name: "break", Action: "exec", Params: map[string]any{"argv": []any{"false"}}}
	for _, tc := range []struct {
		name    string
		steps   []config.Step
		states  []store.StepState
		minSecs []float64
	}{
		{"failed at once", []config.Step{fail}, []store.StepState{store.StepFailed}, []float64{0}},
		{"succeeded then failed", []config.Step{sleep, fail}, []store.StepState{store.StepSucceeded, store.StepFailed}, []float64{0.2, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := config.Drill{Name: "inject", Policy: "recover-shop", Inject: config.DrillInject{Steps: tc.steps}, RecoveredWhen: "svc"}
			e := newEnv(t, svcConfig(t, d))
			run, err := e.runner.Start(context.Background(), "inject", "alice", "")
			if err != nil {
				t.Fatal(err)
			}
			got := e.wait(run.ID)
			if len(got.Injection) != len(tc.steps) {
				t.Fatalf("injection steps %+v, want %d", got.Injection, len(tc.steps))
			}
			md := Markdown(got)
			for i, s := range got.Injection {
				if s.State != tc.states[i] {
					t.Errorf("step %s: %s, want %s", s.Name, s.State, tc.states[i])
				}
				if s.EndedAt.IsZero() || s.EndedAt.Before(s.StartedAt) || s.EndedAt.Sub(s.StartedAt) < time.Duration(tc.minSecs[i]*float64(time.Second)) {
					t.Errorf("step %s: started %s, ended %s", s.Name, s.StartedAt, s.EndedAt)
				}
				row := regexp.MustCompile(`(?m)^\| ` + s.Name + ` \| exec \| ` + string(s.State) + ` \| ([^|]*) \| ([^|]*) \|`).FindStringSubmatch(md)
				if row == nil {
					t.Fatalf("no Injection row for step %s:\n%s", s.Name, md)
				}
				if row[1] != s.StartedAt.UTC().Format("15:04:05.000") || row[2] != s.EndedAt.UTC().Format("15:04:05.000") {
					t.Errorf("step %s: started %q, ended %q in the report, want %s and %s", s.Name, row[1], row[2],
						s.StartedAt.UTC().Format("15:04:05.000"), s.EndedAt.UTC().Format("15:04:05.000"))
				}
			}
		})
	}
}
