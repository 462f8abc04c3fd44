package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sort"

	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"

	"github.com/fruitfulplanet/drguard/detect/probe"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// Exit codes of the CLI.
const (
	ExitOK    = 0
	ExitFail  = 1 // the command ran and found problems
	ExitUsage = 2 // the command line is wrong
)

// IO is where a command reads and writes.
type IO struct {
	Stdout, Stderr io.Writer
}

type command struct {
	summary string
	run     func(ctx context.Context, args []string, io IO) int
}

func commands() map[string]command {
	return map[string]command{
		"serve":      {"run the daemon", cmdServe},
		"check":      {"validate the configuration and lint the DR plan", cmdCheck},
		"approve":    {"approve (or --reject) a gated step on a running drguard", cmdApprove},
		"version":    {"print the version", cmdVersion},
		"backup":     {"take a backup of a target (and --prune, or --dry-run to list, retention)", cmdBackup},
		"restore":    {"restore a backup into a database, after authenticating all of it", cmdRestore},
		"verify":     {"prove the latest backup restores: restore test into a scratch database", cmdVerify},
		"drill":      {"check a DR drill (preflight), or run it in the daemon with --execute", cmdDrill},
		"postmortem": {"write the post-mortem of an incident (or --drill-run) from the journal, as Markdown", cmdPostmortem},
	}
}

// Main runs the drguard command line and returns the process exit code.
func Main(ctx context.Context, args []string, io IO) int {
	cmds := commands()
	if len(args) == 0 {
		usage(io.Stderr, cmds)
		return ExitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(io.Stdout, cmds)
		return ExitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(io.Stderr, "drguard: unknown command %q\n\n", args[0])
		usage(io.Stderr, cmds)
		return ExitUsage
	}
	code := c.run(ctx, args[1:], io)
	if code == ExitUsage && wantsHelp(args[1:]) {
		return ExitOK
	}
	return code
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: drguard <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'drguard <command> --help' for a command's flags.")
}

// wantsHelp reports whether a command's arguments ask for its usage: the
// command then printed it and exits 0, whatever it returned.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// newFlags returns a flag set that prints errors to stderr and never exits.
func newFlags(name string, io IO) *flag.FlagSet {
	fs := flag.NewFlagSet("drguard "+name, flag.ContinueOnError)
	fs.SetOutput(io.Stderr)
	return fs
}

// parse parses flags, allowing positional arguments before and between
// them (drguard approve ID --reject).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// KnownActions lists the registered actions with their static params
// checks, and the probe kinds with theirs, for the configuration loader.
// Nothing is built to check.
func KnownActions() config.Known {
	return config.Known{Actions: action.Checks(), ProbeTypes: probe.Known(), Probes: probe.Validators()}
}

// loadConfig loads the configuration for a command; offline commands
// (backup, restore, verify) serve no HTTP and need no webhook credentials.
func loadConfig(path string, offline bool, io IO) (*config.Config, bool) {
	if path == "" {
		fmt.Fprintln(io.Stderr, "drguard: --config.file is required")
		return nil, false
	}
	known := KnownActions()
	known.Offline = offline
	cfg, err := config.Load(path, known)
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintf(io.Stderr, "%s: %s\n", p.Severity, p)
			}
		} else {
			fmt.Fprintf(io.Stderr, "error: %v\n", err)
		}
		return nil, false
	}
	return cfg, true
}

func cmdCheck(_ context.Context, args []string, io IO) int {
	fs := newFlags("check", io)
	file := fs.String("config.file", "", "configuration file to check")
	webConfig := fs.String("web.config.file", "", "web configuration file (TLS, client certificates, basic-auth users) to check as well")
	if _, err := parse(fs, args); err != nil {
		return ExitUsage
	}
	cfg, ok := loadConfig(*file, false, io)
	if err := ValidateWebConfig(*webConfig); err != nil {
		fmt.Fprintf(io.Stderr, "error: %v\n", err)
		ok = false
	}
	if !ok {
		return ExitFail
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(io.Stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(io.Stdout, "%s: OK (%d policies, %d probes, %d targets)\n", *file, len(cfg.Policies), len(cfg.Probes), countTargets(cfg))
	return ExitOK
}

func countTargets(c *config.Config) int {
	t := c.Targets
	return len(t.Postgres) + len(t.Redis) + len(t.HTTP) + len(t.S3) + len(t.Kubernetes) + len(t.AWS)
}

func cmdServe(ctx context.Context, args []string, io IO) int {
	fs := newFlags("serve", io)
	file := fs.String("config.file", "", "configuration file")
	listen := fs.String("web.listen-address", "", "address to listen on (default from config, :9095)")
	webConfig := fs.String("web.config.file", "", "exporter-toolkit web configuration: TLS, client certificates, HTTP/2, bcrypt basic-auth users (default: plain HTTP)")
	storage := fs.String("storage.path", "", "journal directory (default from config, data)")
	dryRun := fs.Bool("dry-run", false, "journal and count what would be done; touch nothing")
	logCfg := addLogFlags(fs, "info")
	if _, err := parse(fs, args); err != nil {
		return ExitUsage
	}
	log := NewLogger(io.Stderr, logCfg)
	cfg, ok := loadConfig(*file, false, io)
	if !ok {
		return ExitFail
	}
	if from := EnsureMinProcs(); from != 0 {
		log.Info("GOMAXPROCS raised: with one P, intake's durable writes queue behind request handlers", "from", from, "to", minProcs)
	}
	for _, w := range cfg.Warnings() {
		log.Warn("configuration", "warning", w.String())
	}
	a, err := New(Options{Config: cfg, ListenAddress: *listen, StoragePath: *storage, DryRun: *dryRun, Logger: log, WebConfigFile: *webConfig})
	if err != nil {
		log.Error("cannot start", "err", err)
		return ExitFail
	}
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return ExitFail
	}
	return ExitOK
}

// addLogFlags adds --log.level (default level) and --log.format, with
// promslog's names, help and values, as every Prometheus component has.
func addLogFlags(fs *flag.FlagSet, level string) *promslog.Config {
	c := &promslog.Config{Level: promslog.NewLevel(), Format: promslog.NewFormat()}
	_ = c.Level.Set(level)
	_ = c.Format.Set("logfmt")
	fs.Var(zeroSafe{c.Level}, promslogflag.LevelFlagName, promslogflag.LevelFlagHelp)
	fs.Var(zeroSafe{c.Format}, promslogflag.FormatFlagName, promslogflag.FormatFlagHelp)
	return c
}

// zeroSafe wraps a flag.Value whose zero value panics in String (promslog's
// Level and Format hold a nil pointer): flag's usage output calls String
// on a zero value of each flag's type to tell whether to print a default.
type zeroSafe struct{ v flag.Value }

func (z zeroSafe) String() string {
	if z.v == nil {
		return ""
	}
	return z.v.String()
}

func (z zeroSafe) Set(s string) error { return z.v.Set(s) }

// NewLogger builds a command's logger with promslog, writing to w.
func NewLogger(w io.Writer, c *promslog.Config) *slog.Logger {
	c.Writer = w
	return promslog.New(c)
}

func cmdVersion(_ context.Context, _ []string, io IO) int {
	fmt.Fprintf(io.Stdout, "drguard %s (revision %s, %s %s/%s)\n", Version, Revision(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}

// Stdio is the process's standard IO.
func Stdio() IO { return IO{Stdout: os.Stdout, Stderr: os.Stderr} }
