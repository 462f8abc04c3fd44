package remediate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// TemplateData is what a step's parameter templates see:
// {{ .Labels.target }}, {{ .Annotations.summary }}, {{ .Incident.ID }},
// {{ .Run.ID }}, {{ .Target }}, {{ .Policy }}. Rendered values are plain
// strings that actions treat as data; {{ json .Labels.x }} encodes a value
// as JSON, for bodies.
type TemplateData struct {
	Labels      map[string]string
	Annotations map[string]string
	Incident    TemplateIncident
	Run         TemplateRun
	Target      string
	Policy      string
}

// TemplateIncident is the incident as templates see it.
type TemplateIncident struct {
	ID          string
	Fingerprint string
	StartsAt    time.Time
	Summary     string
}

// TemplateRun is the run as templates see it.
type TemplateRun struct {
	ID string
}

// newTemplate parses one parameter value, with the functions check knows
// (json). A reference to a missing label is an error, not an empty string.
func newTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(config.StepTemplateFuncs()).Parse(text)
}

// parseTemplates checks that every string in params parses as a template.
func parseTemplates(params map[string]any) error {
	_, err := walkParams(params, "", func(path, s string) (string, error) {
		if _, err := newTemplate(path, s); err != nil {
			return "", fmt.Errorf("param %s: %w", path, err)
		}
		return s, nil
	})
	return err
}

// renderParams renders every string in params over data, returning a new
// tree normalised to what JSON decoding yields, so that the journaled
// params, the approval's hash and what the action receives are identical.
func renderParams(params map[string]any, data TemplateData) (map[string]any, error) {
	out, err := walkParams(params, "", func(path, s string) (string, error) {
		if !strings.Contains(s, "{{") {
			return s, nil
		}
		t, err := newTemplate(path, s)
		if err != nil {
			return "", fmt.Errorf("param %s: %w", path, err)
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return "", fmt.Errorf("param %s: %w", path, err)
		}
		return b.String(), nil
	})
	if err != nil {
		return nil, err
	}
	return normalize(out)
}

// walkParams copies params, replacing each string by fn(path, string).
func walkParams(params map[string]any, path string, fn func(path, s string) (string, error)) (map[string]any, error) {
	if params == nil {
		return nil, nil
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]any, len(params))
	for _, k := range keys {
		v, err := walkValue(params[k], joinPath(path, k), fn)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

func walkValue(v any, path string, fn func(path, s string) (string, error)) (any, error) {
	switch x := v.(type) {
	case string:
		return fn(path, x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := walkValue(e, fmt.Sprintf("%s[%d]", path, i), fn)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := fn(fmt.Sprintf("%s[%d]", path, i), e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		return walkParams(x, path, fn)
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return walkParams(m, path, fn)
	default:
		return v, nil
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// normalize round-trips v through JSON so that it has exactly the types a
// value read back from the journal has.
func normalize(v map[string]any) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode params: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode params: %w", err)
	}
	return out, nil
}

// approvalHash is what an approval is bound to: the SHA-256 of the
// canonical JSON (object keys sorted, as encoding/json writes maps) of the
// step's action, target, rendered parameters and index in its run,
// prefixed "sha256:". The same parameters on another target, or as
// another step, hash differently.
func approvalHash(act, target string, index int, params map[string]any) (string, error) {
	if params == nil {
		params = map[string]any{}
	}
	raw, err := json.Marshal(struct {
		Action string         `json:"action"`
		Target string         `json:"target"`
		Step   int            `json:"step"`
		Params map[string]any `json:"params"`
	}{act, target, index, params})
	if err != nil {
		return "", fmt.Errorf("hash params: %w", err)
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// stepHash is approvalHash of step st of run.
func stepHash(run *store.Run, st *store.Step) (string, error) {
	return approvalHash(st.Action, run.Target, st.Index, st.Params)
}
