package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/detect/probe"
	"github.com/fruitfulplanet/drguard/internal/backup"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/kubeclient"
	"github.com/fruitfulplanet/drguard/internal/pitr"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/fruitfulplanet/drguard/remediate/action"
	"github.com/fruitfulplanet/drguard/remediate/drill"
)

// drillUsage is the drill command's synopsis.
const drillUsage = `usage: drguard drill --config.file=F --drill=NAME [--format=table|json]    (preflight: checks, changes nothing)
       drguard drill --drill=NAME --execute --server=URL --token-file=F     (runs it in the daemon and follows it)`

// cmdDrill checks a drill beforehand (the default) or, with --execute,
// starts it in a running drguard, follows it and prints its report. It
// exits 0 only when the preflight found nothing failing, or the drill
// passed every item of the testing checklist.
func cmdDrill(ctx context.Context, args []string, stdio IO) int {
	fs := newFlags("drill", stdio)
	file := fs.String("config.file", "", "configuration file (preflight)")
	name := fs.String("drill", "", "the drill, a drills[].name")
	format := fs.String("format", "table", "preflight output: table or json")
	execute := fs.Bool("execute", false, "run the drill in the daemon at --server (it injects a real failure)")
	srv := fs.String("server", "", "drguard's URL, e.g. http://drguard:9095 (--execute)")
	tokenFile := fs.String("token-file", "", "file holding an admin's API token (--execute)")
	poll := fs.Duration("poll", time.Second, "how often to read the drill's progress (--execute)")
	logCfg := addLogFlags(fs, "warn")
	if _, err := parse(fs, args); err != nil {
		return ExitUsage
	}
	switch {
	case *name == "":
		fmt.Fprintln(stdio.Stderr, drillUsage)
		return ExitUsage
	case *execute && (*srv == "" || *tokenFile == ""):
		fmt.Fprintln(stdio.Stderr, "drguard drill --execute needs --server and --token-file\n"+drillUsage)
		return ExitUsage
	case *execute:
		return executeDrill(ctx, *srv, *tokenFile, *name, *poll, stdio)
	case *format != "table" && *format != "json":
		fmt.Fprintln(stdio.Stderr, "drguard drill: --format is table or json")
		return ExitUsage
	}
	return preflightDrill(ctx, *file, *name, *format, NewLogger(stdio.Stderr, logCfg), stdio)
}

// preflightDrill runs the drill's preflight with the configuration's
// actions, backups and probes, touching nothing, and prints its table.
func preflightDrill(ctx context.Context, file, name, format string, log *slog.Logger, stdio IO) int {
	cfg, ok := loadConfig(file, true, stdio)
	if !ok {
		return ExitFail
	}
	d, ok := cfg.Drill(name)
	if !ok {
		fmt.Fprintf(stdio.Stderr, "drguard drill: no drill %q in %s (drills: %s)\n", name, file, drillNames(cfg))
		return ExitFail
	}
	kube := kubeclient.NewCache("drguard-preflight")
	actions, err := BuildActions(action.Deps{Logger: log, Config: cfg, Kube: kube})
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard drill: %v\n", err)
		return ExitFail
	}
	objectives := metrics.NewObjectives(prometheus.NewRegistry(), cfg.Objectives)
	backups, err := backup.New(backup.Options{Config: cfg, Logger: log, Objectives: objectives})
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard drill: %v\n", err)
		return ExitFail
	}
	rds := pitr.New(pitr.Options{Config: cfg, Report: objectives.ObservePITR, Logger: log})
	refresh := func(ctx context.Context) {
		backups.Refresh(ctx)
		rds.Refresh(ctx)
	}
	env := probe.NewEnv(probe.EnvOptions{Logger: log, Config: cfg, Kube: kube})
	defer env.Close()
	probes, err := env.Compile(cfg.Probes)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard drill: %v\n", err)
		return ExitFail
	}
	rows := drill.Preflight(ctx, drill.PreflightOptions{Config: cfg, Actions: actions, Recovery: objectives, Refresh: refresh,
		RunProbe: func(ctx context.Context, p config.Probe) detect.Result { return probes.Run(ctx, p) }}, d)
	if format == "json" {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"drill": name, "failed": drill.Failed(rows), "checks": rows})
	} else {
		_ = drill.WriteTable(stdio.Stdout, rows)
		counts := map[string]int{}
		for _, r := range rows {
			counts[r.Verdict]++
		}
		fmt.Fprintf(stdio.Stdout, "\ndrill %s: %d checks, %d passed, %d warnings, %d failed (nothing was changed)\n",
			name, len(rows), counts[action.VerdictPass], counts[action.VerdictWarn], counts[action.VerdictFail])
	}
	if drill.Failed(rows) {
		return ExitFail
	}
	return ExitOK
}

// drillNames lists the configured drills.
func drillNames(cfg *config.Config) string {
	var names []string
	for _, d := range cfg.Drills {
		names = append(names, d.Name)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// executeDrill starts the drill through the API, prints its log as it
// grows, then its Markdown report; it exits 0 only if the drill passed.
func executeDrill(ctx context.Context, srv, tokenFile, name string, poll time.Duration, stdio IO) int {
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard drill: read token file: %v\n", err)
		return ExitFail
	}
	c := apiClient{base: strings.TrimRight(srv, "/"), token: strings.TrimSpace(string(raw))}
	var run store.DrillRun
	if err := c.call(ctx, http.MethodPost, "/api/v1/drills/"+url.PathEscape(name)+"/run", "", http.StatusAccepted, &run); err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard drill: start %s: %v\n", name, err)
		return ExitFail
	}
	fmt.Fprintf(stdio.Stdout, "drill %s started as %s; following it (Ctrl-C stops following, not the drill)\n", name, run.ID)
	shown := 0
	for {
		for ; shown < len(run.Log); shown++ {
			e := run.Log[shown]
			fmt.Fprintf(stdio.Stdout, "%s  %-20s %s\n", e.Time.UTC().Format("15:04:05.000"), e.Kind, e.Message)
		}
		if !run.Active() {
			break
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stdio.Stderr, "stopped following; drill %s goes on in drguard (abort it with POST %s/api/v1/drills/runs/%s/abort)\n", run.ID, c.base, run.ID)
			return ExitFail
		case <-time.After(poll):
		}
		if err := c.call(ctx, http.MethodGet, "/api/v1/drills/runs/"+run.ID, "", http.StatusOK, &run); err != nil {
			fmt.Fprintf(stdio.Stderr, "drguard drill: %v (retrying)\n", err)
		}
	}
	var report string
	if err := c.call(ctx, http.MethodGet, "/api/v1/drills/runs/"+run.ID, "text/markdown", http.StatusOK, &report); err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard drill: report: %v\n", err)
		report = drill.Markdown(run)
	}
	fmt.Fprintf(stdio.Stdout, "\n%s", report)
	if !run.Passed() {
		return ExitFail
	}
	return ExitOK
}

// apiClient calls drguard's API with a bearer token.
type apiClient struct{ base, token string }

// call sends a request and decodes the answer into out (a *string for
// text), failing unless the status is want.
func (c apiClient) call(ctx context.Context, method, path, accept string, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(nil))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if s, ok := out.(*string); ok {
		*s = string(body)
		return nil
	}
	return json.Unmarshal(body, out)
}
