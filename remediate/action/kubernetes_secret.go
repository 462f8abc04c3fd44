package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// maxSecretValueBytes bounds a value read from a value file.
const maxSecretValueBytes = 1 << 20

// secretKeyRE is a valid key of a Secret's data.
var secretKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// PatchSecret sets keys of an existing Secret, leaving its other keys as
// they are: the plan's "update DATABASE_URL in secrets" and "rotate all
// secrets". Values come from value_files, read when the step runs, so they
// never reach the journal, the approval, logs or errors; the result lists
// key names only. values holds plain values that are not secret (they are
// journaled with the step's params, like every param).
//
// Params: name (required), value_files (map of key to file path), values
// (map of key to a non-secret value), target, namespace. At least one key.
//
// Result: secret, namespace, keys (sorted names), resource_version.
type PatchSecret struct{ kubeBase }

var _ Action = (*PatchSecret)(nil)

// NewPatchSecret builds the kubernetes.patch_secret action.
func NewPatchSecret(d Deps) (Action, error) { return &PatchSecret{newKubeBase(d)}, nil }

// Info declares patch_secret destructive (the old values are overwritten
// and drguard cannot restore them) and idempotent (setting the same
// values again changes nothing).
func (*PatchSecret) Info() Info { return Info{Destructive: true, Idempotent: true} }

type secretSpec struct {
	name       string
	values     map[string]string
	valueFiles map[string]string
}

// Validate checks the unrendered params.
func (*PatchSecret) Validate(params map[string]any) error {
	if err := checkKnown(params, append(kubeCommonParams, "name", "values", "value_files")...); err != nil {
		return err
	}
	if err := validateKubeCommon(params); err != nil {
		return err
	}
	_, err := secretParams(params, true)
	return err
}

func secretParams(params map[string]any, unrendered bool) (secretSpec, error) {
	var s secretSpec
	var err error
	if s.name, err = validateKubeName(params, "name", unrendered); err != nil {
		return s, err
	}
	if s.values, err = stringMapParam(params, "values"); err != nil {
		return s, err
	}
	if s.valueFiles, err = stringMapParam(params, "value_files"); err != nil {
		return s, err
	}
	if len(s.values)+len(s.valueFiles) == 0 {
		return s, errors.New(`set at least one key: params "value_files" (secret values, read at run time) or "values" (non-secret, journaled)`)
	}
	for k := range s.values {
		if _, dup := s.valueFiles[k]; dup {
			return s, fmt.Errorf("key %q is in both values and value_files", k)
		}
	}
	for _, k := range secretKeys(s) {
		if !secretKeyRE.MatchString(k) || len(k) > 253 {
			return s, fmt.Errorf("%q is not a valid Secret key (letters, digits, '-', '_', '.')", k)
		}
	}
	for k, path := range s.valueFiles {
		if strings.TrimSpace(path) == "" {
			return s, fmt.Errorf(`param "value_files": key %q has no file path`, k)
		}
	}
	return s, nil
}

func secretKeys(s secretSpec) []string {
	keys := make([]string, 0, len(s.values)+len(s.valueFiles))
	for k := range s.values {
		keys = append(keys, k)
	}
	for k := range s.valueFiles {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Run reads the value files and merge-patches the Secret's data.
func (p *PatchSecret) Run(ctx context.Context, req Request) (Outcome, error) {
	spec, err := secretParams(req.Params, false)
	if err != nil {
		return Outcome{}, err
	}
	data := make(map[string][]byte, len(spec.values)+len(spec.valueFiles))
	for k, v := range spec.values {
		data[k] = []byte(v)
	}
	for k, path := range spec.valueFiles {
		v, err := readValueFile(path)
		if err != nil {
			return Outcome{}, fmt.Errorf("key %s: %w", k, err)
		}
		data[k] = v
	}
	kc, err := p.resolve(req)
	if err != nil {
		return Outcome{}, err
	}
	// json.Marshal encodes []byte as base64, as Secret data wants.
	patch, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		return Outcome{}, errors.New("encode secret patch failed")
	}
	sec, err := kc.client.CoreV1().Secrets(kc.namespace).Patch(ctx, spec.name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{"patch", "secrets", spec.name, kc.namespace})
	}
	keys := secretKeys(spec)
	p.log.Info("kubernetes secret patched", "run", req.RunID, "step", req.Step, "secret", kc.namespace+"/"+spec.name, "keys", keys)
	anyKeys := make([]any, len(keys))
	for i, k := range keys {
		anyKeys[i] = k
	}
	return Outcome{
		Output: fmt.Sprintf("secret %s/%s: set %s (values not shown)", kc.namespace, spec.name, strings.Join(keys, ", ")),
		Result: map[string]any{"secret": spec.name, "namespace": kc.namespace, "keys": anyKeys, "resource_version": sec.ResourceVersion},
	}, nil
}

// readValueFile reads a secret value, dropping one trailing newline. Its
// errors name the file, never its contents.
func readValueFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("value file %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxSecretValueBytes+1))
	if err != nil {
		return nil, fmt.Errorf("value file %s: %w", path, errors.Unwrap(err))
	}
	if len(raw) > maxSecretValueBytes {
		return nil, fmt.Errorf("value file %s is larger than %d bytes", path, maxSecretValueBytes)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
	if s == "" {
		return nil, fmt.Errorf("value file %s is empty", path)
	}
	return []byte(s), nil
}
