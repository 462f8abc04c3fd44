package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/fruitfulplanet/drguard/internal/params"
)

// DefaultMaxOutputBytes caps the output an exec step captures.
const DefaultMaxOutputBytes = 64 << 10

// execWaitDelay is how long Wait waits for the output pipes after the
// process exited or was killed, in case a grandchild that escaped the
// process group still holds them.
const execWaitDelay = 2 * time.Second

// errTailBytes is how much of the output an error message quotes.
const errTailBytes = 512

// passedEnv are the only variables of drguard's own environment a child
// sees; everything else it gets is explicit.
var passedEnv = []string{"PATH", "HOME", "LANG"}

// Exec runs a program from an argv list, never through a shell. Labels
// reach it as DRGUARD_LABEL_<NAME> environment variables; its combined
// output is captured up to a cap; a timeout kills its whole process group.
type Exec struct {
	logger *slog.Logger
}

// execInfo declares exec neither destructive nor idempotent; a step may
// override both.
var execInfo = Info{}

// execParams is the params of exec.
type execParams struct {
	// Argv is the program and its arguments; required.
	Argv []string `param:"argv"`
	// Env adds variables to the child's environment.
	Env map[string]string `param:"env"`
	// Dir is the working directory.
	Dir string `param:"dir"`
	// MaxOutputBytes caps the captured output (default 64 KiB).
	MaxOutputBytes int `param:"max_output_bytes"`
	// AllowedCommands, when set, lists the programs the rendered argv[0]
	// may name, exactly as written; check requires it when argv[0] is a
	// template.
	AllowedCommands []string `param:"allowed_commands"`
}

func (p *execParams) defaults() { p.MaxOutputBytes = DefaultMaxOutputBytes }

func (p *execParams) check(t params.Templates) error {
	if len(p.Argv) == 0 || (t.Literal("argv[0]") && p.Argv[0] == "") {
		return params.Required("argv", "a list whose first element is the program")
	}
	if p.MaxOutputBytes <= 0 && t.Literal("max_output_bytes") {
		return params.Errorf("max_output_bytes", "must be positive, got %d", p.MaxOutputBytes)
	}
	for i, c := range p.AllowedCommands {
		if strings.TrimSpace(c) == "" {
			return params.Errorf(params.Index("allowed_commands", i), "want a program name or path")
		}
	}
	return nil
}

// allow checks the rendered program against allowed_commands; without the
// list, any program passes.
func (p *execParams) allow() error {
	if len(p.AllowedCommands) == 0 || slices.Contains(p.AllowedCommands, p.Argv[0]) {
		return nil
	}
	return fmt.Errorf("program %q is %w by allowed_commands %q", p.Argv[0], errNotAllowed, p.AllowedCommands)
}

func newExec(d Deps) (RunFunc[execParams], error) {
	return (&Exec{logger: d.Logger}).run, nil
}

// run executes the program with a clean environment and waits for it,
// killing its process group when ctx ends.
func (x *Exec) run(ctx context.Context, req Request, spec *execParams) (Outcome, error) {
	program := spec.Argv[0]
	if err := spec.allow(); err != nil {
		return Outcome{}, fmt.Errorf("not run: %w", err)
	}
	args := make([]string, len(spec.Argv)-1)
	for i, a := range spec.Argv[1:] {
		args[i] = strings.ReplaceAll(a, "\x00", nulReplacement)
	}
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Env = execEnv(spec.Env, req)
	cmd.Dir = spec.Dir
	cmd.Stdin = nil
	out := &cappedBuffer{max: spec.MaxOutputBytes}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The child leads its own process group; kill all of it so that
		// a hung child's children die too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = execWaitDelay

	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	output := out.String()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	o := Outcome{Output: output, Result: map[string]any{
		"exit_code":        code,
		"duration_seconds": elapsed.Seconds(),
	}}
	logger := x.logger.With("run", req.RunID, "step", req.Step, "program", program)
	if ctxErr := ctx.Err(); ctxErr != nil && err != nil {
		logger.Warn("exec step cancelled; process group killed", "after", elapsed, "cause", ctxErr)
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return o, fmt.Errorf("%s %w after %s; process group killed%s", program, ErrTimedOut, elapsed.Round(time.Millisecond), tailFor(output))
		}
		return o, fmt.Errorf("%s cancelled after %s; process group killed%s", program, elapsed.Round(time.Millisecond), tailFor(output))
	}
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return o, fmt.Errorf("%s exited with code %d%s", program, code, tailFor(output))
		}
		if errors.Is(err, exec.ErrWaitDelay) {
			// The program exited 0 but something it started kept the
			// output open; the result stands.
			logger.Warn("exec step left a process holding its output", "after", elapsed)
			return o, nil
		}
		return o, fmt.Errorf("start %s: %w", program, err)
	}
	logger.Debug("exec step finished", "exit_code", code, "after", elapsed)
	return o, nil
}

// Caps on the labels an exec child gets as DRGUARD_LABEL_* variables, so
// that no alert can make a step fail to start (Linux refuses one variable
// over 128 KiB, and all of them over the argument space).
const (
	// MaxLabelValueBytes caps one label's value; a longer value is cut
	// (on a UTF-8 boundary).
	MaxLabelValueBytes = 4 << 10
	// MaxLabelNameBytes caps a variable name's suffix.
	MaxLabelNameBytes = 128
	// MaxLabelEnvBytes caps all DRGUARD_LABEL_* variables together;
	// labels beyond it, in name order, are left out.
	MaxLabelEnvBytes = 64 << 10
)

// nulReplacement stands for a NUL byte, which no environment variable or
// argument can hold.
const nulReplacement = "\uFFFD"

// execEnv builds the child's environment: PATH, HOME and LANG from
// drguard's own, the step's env, then the DRGUARD_* variables, which win.
// Labels are capped (MaxLabelValueBytes, MaxLabelEnvBytes) with NULs
// replaced; DRGUARD_LABELS_TRUNCATED=1 says one was cut or left out.
func execEnv(extra map[string]string, req Request) []string {
	var env []string
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	clean := make(map[string]string, len(extra))
	for k, v := range extra {
		clean[k] = strings.ReplaceAll(v, "\x00", nulReplacement)
	}
	env = appendSorted(env, clean, "")
	labels, truncated := labelEnv(req.Labels)
	env = append(env, labels...)
	if truncated {
		env = append(env, "DRGUARD_LABELS_TRUNCATED=1")
	}
	return append(env,
		"DRGUARD_RUN_ID="+req.RunID,
		"DRGUARD_POLICY="+req.Policy,
		"DRGUARD_TARGET="+capValue(req.Target, MaxLabelValueBytes),
		"DRGUARD_STEP="+req.Step,
	)
}

// labelEnv returns the DRGUARD_LABEL_* variables of labels, in name order,
// within the caps, and whether any was cut or left out.
func labelEnv(labels map[string]string) ([]string, bool) {
	vars := make(map[string]string, len(labels))
	truncated := false
	for k, v := range labels {
		name := EnvName(k)
		if len(name) > MaxLabelNameBytes {
			name, truncated = name[:MaxLabelNameBytes], true
		}
		cv := capValue(v, MaxLabelValueBytes)
		truncated = truncated || len(cv) < len(v)
		vars[name] = cv
	}
	var out []string
	total := 0
	for _, kv := range appendSorted(nil, vars, "DRGUARD_LABEL_") {
		if total+len(kv) > MaxLabelEnvBytes {
			truncated = true
			continue
		}
		total += len(kv)
		out = append(out, kv)
	}
	return out, truncated
}

// capValue replaces NULs in v and cuts it to at most n bytes, on a UTF-8
// boundary.
func capValue(v string, n int) string {
	v = strings.ReplaceAll(v, "\x00", nulReplacement)
	if len(v) <= n {
		return v
	}
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n]
}

func appendSorted(env []string, m map[string]string, prefix string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, prefix+k+"="+m[k])
	}
	return env
}

// EnvName turns a label name into the suffix of its DRGUARD_LABEL_
// variable: upper case, with every character outside [A-Z0-9_] replaced by
// an underscore.
func EnvName(label string) string {
	b := []byte(strings.ToUpper(label))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			b[i] = '_'
		}
	}
	return string(b)
}

// tailFor formats the end of a program's output for an error message.
func tailFor(output string) string {
	output = strings.TrimSpace(output)
	if output == "" {
		return ""
	}
	if len(output) > errTailBytes {
		output = "…" + output[len(output)-errTailBytes:]
	}
	return ": " + output
}

// cappedBuffer keeps the first max bytes written to it and counts the
// rest. It is safe for concurrent writers.
type cappedBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int64
}

// Write never fails, so that a chatty child is not killed by SIGPIPE.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room > 0 {
		n := min(room, len(p))
		b.buf = append(b.buf, p[:n]...)
		b.dropped += int64(len(p) - n)
	} else {
		b.dropped += int64(len(p))
	}
	return len(p), nil
}

// String returns the captured bytes and, when some were dropped, a marker
// saying how many.
func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped == 0 {
		return string(b.buf)
	}
	return fmt.Sprintf("%s…[truncated %d bytes]", b.buf, b.dropped)
}

// preflightExec checks that the program exists and is executable, found
// on the PATH the step's child gets (drguard's own), and that the working
// directory exists. Nothing is run.
func preflightExec(Deps) PreflightFunc[execParams] {
	return func(_ context.Context, _ Request, spec *execParams) Preflight {
		var pf Preflight
		program := spec.Argv[0]
		if err := spec.allow(); err != nil {
			pf.fail("allowed_commands", program, "%v", err)
			return pf
		}
		if p, err := exec.LookPath(program); err != nil {
			var ee *exec.Error
			reason := err.Error()
			if errors.As(err, &ee) {
				reason = ee.Err.Error()
			}
			if !strings.Contains(program, "/") {
				reason = "not found on PATH " + os.Getenv("PATH")
			}
			pf.fail("program", program, "%s", reason)
		} else {
			pf.pass("program", program, "%s exists and is executable (not run)", p)
		}
		if spec.Dir != "" {
			if st, err := os.Stat(spec.Dir); err != nil || !st.IsDir() {
				pf.fail("dir", spec.Dir, "the working directory does not exist")
			}
		}
		return pf
	}
}
