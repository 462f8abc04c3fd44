package remediate

import (
	"context"
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// verify polls the verifier until the check passes or within elapses.
func (e *Engine) verify(ctx context.Context, v *store.StepVerify, labels map[string]string) error {
	if e.verifier == nil {
		return fmt.Errorf("verify %s: no verifier is configured", v.Probe)
	}
	within := time.Duration(v.Within)
	deadline := time.Now().Add(within)
	last := "no result yet"
	for attempt := 1; ; attempt++ {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return fmt.Errorf("verify %s: did not pass within %s after %d checks: %s", v.Probe, fmtDuration(within), attempt-1, last)
		}
		vctx, cancel := context.WithTimeout(ctx, remaining)
		res, err := e.verifier.Verify(vctx, v.Probe, labels)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			last = err.Error()
		case res.OK:
			return nil
		default:
			last = res.Reason
			if last == "" {
				last = "check failed"
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(e.tick, time.Until(deadline))):
		}
	}
}
