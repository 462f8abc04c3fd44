package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

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
}

func (p *execParams) defaults() { p.MaxOutputBytes = DefaultMaxOutputBytes }

func (p *execParams) check(t params.Templates) error {
	if len(p.Argv) == 0 || (t.Literal("argv[0]") && p.Argv[0] == "") {
		return params.Required("argv", "a list whose first element is the program")
	}
	if p.MaxOutputBytes <= 0 && t.Literal("max_output_bytes") {
		return params.Errorf("max_output_bytes", "must be positive, got %d", p.MaxOutputBytes)
	}
	return nil
}

func newExec(d Deps) (RunFunc[execParams], error) {
	return (&Exec{logger: d.Logger}).run, nil
}

// run executes the program with a clean environment and waits for it,
// killing its process group when ctx ends.
func (x *Exec) run(ctx context.Context, req Request, spec *execParams) (Outcome, error) {
	program := spec.Argv[0]
	cmd := exec.CommandContext(ctx, program, spec.Argv[1:]...)
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

// execEnv builds the child's environment: PATH, HOME and LANG from
// drguard's own, the step's env, then the DRGUARD_* variables, which win.
func execEnv(extra map[string]string, req Request) []string {
	var env []string
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = appendSorted(env, extra, "")
	labels := make(map[string]string, len(req.Labels))
	for k, v := range req.Labels {
		labels[EnvName(k)] = v
	}
	env = appendSorted(env, labels, "DRGUARD_LABEL_")
	return append(env,
		"DRGUARD_RUN_ID="+req.RunID,
		"DRGUARD_POLICY="+req.Policy,
		"DRGUARD_TARGET="+req.Target,
		"DRGUARD_STEP="+req.Step,
	)
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
