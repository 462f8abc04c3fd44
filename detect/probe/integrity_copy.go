package probe

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// CheckCopy returns a checker of restored copies, the shape
// backup.IntegrityCheck takes: it runs every postgres_integrity probe that
// cfg configures for a target, with the probe's own params, against the
// copy reached with dsn, and returns each check's outcome; the error names
// the failed ones.
func CheckCopy(cfg *config.Config, logger *slog.Logger) func(ctx context.Context, target string, dsn config.Secret) (map[string]string, error) {
	return func(ctx context.Context, target string, dsn config.Secret) (map[string]string, error) {
		var probes []config.Probe
		for _, p := range cfg.Probes {
			if p.Type == "postgres_integrity" && p.Target == target {
				probes = append(probes, p)
			}
		}
		if len(probes) == 0 {
			return nil, nil
		}
		copyCfg := &config.Config{Targets: config.Targets{Postgres: []config.PostgresTarget{{Name: target, DSN: dsn}}}}
		env := NewEnv(EnvOptions{Logger: logger, Config: copyCfg})
		defer env.Close()
		set, err := env.Compile(probes)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		var failed []string
		for _, p := range probes {
			r := set.Run(ctx, p)
			for k, d := range r.Details {
				out[p.Name+"."+k] = d
			}
			if !r.OK {
				failed = append(failed, fmt.Sprintf("%s: %s", p.Name, r.Reason))
			}
		}
		sort.Strings(failed)
		if len(failed) > 0 {
			return out, fmt.Errorf("integrity checks failed on the restored copy: %s", strings.Join(failed, "; "))
		}
		return out, nil
	}
}

// ReplicaRecoveryPoint returns the recovery point a postgres_replication
// probe's result shows for its (replica) target: the newest replicated
// heartbeat, else the check's time minus the measured lag. false for any
// other probe, or a result that measured neither.
func ReplicaRecoveryPoint(p config.Probe, r detect.Result) (time.Time, bool) {
	if p.Type != "postgres_replication" {
		return time.Time{}, false
	}
	if ts, ok := r.Observations["heartbeat_timestamp_seconds"]; ok && ts > 0 {
		return time.Unix(0, int64(ts*1e9)).UTC(), true
	}
	if lag, ok := r.Observations["lag_seconds"]; ok && !r.CheckedAt.IsZero() {
		return r.CheckedAt.Add(-time.Duration(lag * float64(time.Second))).UTC(), true
	}
	return time.Time{}, false
}
