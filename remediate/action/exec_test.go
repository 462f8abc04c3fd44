package action

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func execAction(t *testing.T) Action {
	t.Helper()
	a, err := Registry["exec"].New(Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestExecValidate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   string // "" = valid
	}{
		{"argv list", map[string]any{"argv": []any{"kubectl", "rollout", "restart", "{{ .Labels.deployment }}"}}, ""},
		{"all params", map[string]any{"argv": []string{"true"}, "env": map[string]any{"A": "b"}, "dir": "/", "max_output_bytes": 10}, ""},
		{"templated cap", map[string]any{"argv": []any{"true"}, "max_output_bytes": "{{ .Labels.cap }}"}, ""},
		{"missing argv", map[string]any{}, `param "argv": is required`},
		{"empty argv", map[string]any{"argv": []any{}}, `param "argv": is required`},
		{"shell string", map[string]any{"argv": "rm -rf /"}, `param "argv": want a list of strings, got a string`},
		{"non-string element", map[string]any{"argv": []any{"sleep", 3}}, `param "argv[1]": want a string, got a number`},
		{"env not strings", map[string]any{"argv": []any{"true"}, "env": map[string]any{"N": 1}}, `param "env.N": want a string`},
		{"bad cap", map[string]any{"argv": []any{"true"}, "max_output_bytes": -1}, "must be positive"},
		{"unknown param", map[string]any{"argv": []any{"true"}, "shell": true}, `param "shell": unknown key`},
	}
	x := execAction(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := x.Validate(tc.params)
			if tc.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestExecPassesLabelsAsDataAndEnv(t *testing.T) {
	t.Setenv("DRGUARD_TEST_SECRET", "hunter2")
	pwned := filepath.Join(t.TempDir(), "pwned")
	evil := "x; touch " + pwned + " && echo $(id)"
	out, err := execAction(t).Run(context.Background(), Request{
		RunID: "run-000007", Step: "s", Policy: "p", Target: "db-1",
		Params: map[string]any{
			"argv": []any{"/usr/bin/printf", "%s", evil},
			"env":  map[string]any{"EXTRA": "1"},
		},
		Labels: map[string]string{"x": evil},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Output != evil {
		t.Errorf("output %q, want the literal %q", out.Output, evil)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a label was interpreted by a shell")
	}

	out, err = execAction(t).Run(context.Background(), Request{
		RunID: "run-000007", Step: "s", Policy: "p", Target: "db-1",
		Params: map[string]any{"argv": []any{"env"}, "env": map[string]any{"EXTRA": "1", "DRGUARD_RUN_ID": "spoofed"}},
		Labels: map[string]string{"x": evil, "app.kubernetes.io/name": "pg"},
	})
	if err != nil {
		t.Fatal(err)
	}
	env := "\n" + out.Output
	for _, want := range []string{"DRGUARD_LABEL_X=" + evil, "DRGUARD_LABEL_APP_KUBERNETES_IO_NAME=pg", "DRGUARD_RUN_ID=run-000007", "DRGUARD_POLICY=p", "DRGUARD_TARGET=db-1", "EXTRA=1", "PATH="} {
		if !strings.Contains(env, "\n"+want) {
			t.Errorf("env lacks %q:\n%s", want, out.Output)
		}
	}
	for _, not := range []string{"DRGUARD_TEST_SECRET", "hunter2", "spoofed"} {
		if strings.Contains(env, not) {
			t.Errorf("env leaks %q:\n%s", not, out.Output)
		}
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"target": "TARGET", "app.kubernetes.io/name": "APP_KUBERNETES_IO_NAME", "a-b c": "A_B_C", "x_1": "X_1", "ü": "__"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	// timeout(1) forks sleep as its child: both must die.
	marker := fmt.Sprintf("31.%d", time.Now().UnixNano()%1000000)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := execAction(t).Run(ctx, Request{Params: map[string]any{"argv": []any{"timeout", "--foreground", "120", "sleep", marker}}})
	took := time.Since(began)
	if !errors.Is(err, ErrTimedOut) || !strings.Contains(err.Error(), "process group killed") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if took > 3*time.Second {
		t.Errorf("Run returned after %s, want promptly after the 300ms timeout", took)
	}
	deadline := time.Now().Add(2 * time.Second)
	for sleepAlive(t, marker) {
		if time.Now().After(deadline) {
			t.Fatalf("sleep %s survived its parent's timeout", marker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sleepAlive reports whether a process runs "sleep <marker>".
func sleepAlive(t *testing.T, marker string) bool {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		raw, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		if string(raw) == "sleep\x00"+marker+"\x00" {
			stat, _ := os.ReadFile(filepath.Join(filepath.Dir(d), "stat"))
			// A zombie awaiting its reaper is dead for our purposes.
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
				continue
			}
			return true
		}
	}
	return false
}

func TestExecOutputCapAndExitCode(t *testing.T) {
	out, err := execAction(t).Run(context.Background(), Request{Params: map[string]any{
		"argv": []any{"head", "-c", "100000", "/dev/zero"}, "max_output_bytes": 1000,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("\x00", 1000) + "…[truncated 99000 bytes]"; out.Output != want {
		t.Errorf("output is %d bytes ending %q, want 1000 bytes and the truncation marker", len(out.Output), out.Output[max(0, len(out.Output)-30):])
	}

	out, err = execAction(t).Run(context.Background(), Request{Params: map[string]any{
		"argv": []any{"ls", "/nonexistent-drguard"},
	}})
	if err == nil || !strings.Contains(err.Error(), "ls exited with code 2") || !strings.Contains(err.Error(), "nonexistent-drguard") {
		t.Errorf("err = %v, want exit code 2 and a tail of the output", err)
	}
	if out.Result["exit_code"] != 2 {
		t.Errorf("result = %v", out.Result)
	}

	_, err = execAction(t).Run(context.Background(), Request{Params: map[string]any{"argv": []any{"/no/such/program"}}})
	if err == nil || !strings.Contains(err.Error(), "start /no/such/program") {
		t.Errorf("err = %v, want a start error", err)
	}
}

func TestExecDir(t *testing.T) {
	dir := t.TempDir()
	out, err := execAction(t).Run(context.Background(), Request{Params: map[string]any{"argv": []any{"pwd"}, "dir": dir}})
	if err != nil || strings.TrimSpace(out.Output) != dir {
		t.Fatalf("pwd = %q, %v; want %s", out.Output, err, dir)
	}
}
