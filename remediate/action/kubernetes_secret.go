package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// secretKeyRE is a valid key of a Secret's data.
var secretKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// PatchSecret sets keys of an existing Secret, leaving its other keys as
// they are: the plan's "update DATABASE_URL in secrets" and "rotate all
// secrets". Values come from value_files, read through the configuration
// (Config.ReadSecret) when the step runs, so they never reach the journal,
// the approval, logs or errors; the result lists
// key names only. values holds plain values that are not secret (they are
// journaled with the step's params, like every param).
//
// Params: name (required), value_files (map of key to file path), values
// (map of key to a non-secret value), target, namespace. At least one key.
//
// Result: secret, namespace, keys (sorted names), resource_version.
type PatchSecret struct{ kubeBase }

// patchSecretInfo declares patch_secret destructive (the old values are
// overwritten and drguard cannot restore them) and idempotent (setting the
// same values again changes nothing).
var patchSecretInfo = Info{Destructive: true, Idempotent: true}

// secretParams is the params of kubernetes.patch_secret.
type secretParams struct {
	kubeCommon
	Name string `param:"name"`
	// Values are plain, non-secret values (journaled with the params).
	Values map[string]string `param:"values"`
	// ValueFiles maps a key to a file holding its secret value, read when
	// the step runs; a relative path is relative to the configuration
	// file.
	ValueFiles map[string]config.SecretRef `param:"value_files"`
}

func (s *secretParams) check(t params.Templates) error {
	if err := s.checkCommon(t); err != nil {
		return err
	}
	if err := checkKubeName(t, "name", s.Name); err != nil {
		return err
	}
	if len(s.Values)+len(s.ValueFiles) == 0 {
		return errors.New(`set at least one key: params "value_files" (secret values, read at run time) or "values" (non-secret, journaled)`)
	}
	for k := range s.Values {
		if _, dup := s.ValueFiles[k]; dup {
			return params.Errorf("values."+k, "key %q is in both values and value_files", k)
		}
	}
	for _, k := range secretKeys(s) {
		if !secretKeyRE.MatchString(k) || len(k) > 253 {
			return fmt.Errorf("%q is not a valid Secret key (letters, digits, '-', '_', '.')", k)
		}
	}
	return nil
}

func newPatchSecret(d Deps) (RunFunc[secretParams], error) {
	return (&PatchSecret{newKubeBase(d)}).run, nil
}

func secretKeys(s *secretParams) []string {
	keys := make([]string, 0, len(s.Values)+len(s.ValueFiles))
	for k := range s.Values {
		keys = append(keys, k)
	}
	for k := range s.ValueFiles {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// run reads the value files and merge-patches the Secret's data.
func (p *PatchSecret) run(ctx context.Context, req Request, spec *secretParams) (Outcome, error) {
	data := make(map[string][]byte, len(spec.Values)+len(spec.ValueFiles))
	for k, v := range spec.Values {
		data[k] = []byte(v)
	}
	for k, ref := range spec.ValueFiles {
		v, err := p.cfg.ReadSecret(ref)
		if err != nil {
			return Outcome{}, fmt.Errorf("key %s: %w", k, err)
		}
		data[k] = []byte(v.Reveal())
	}
	kc, err := p.resolve(req, spec.kubeCommon)
	if err != nil {
		return Outcome{}, err
	}
	// json.Marshal encodes []byte as base64, as Secret data wants.
	patch, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		return Outcome{}, errors.New("encode secret patch failed")
	}
	sec, err := kc.client.CoreV1().Secrets(kc.namespace).Patch(ctx, spec.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return Outcome{}, kubeError(ctx, err, kubeObject{"patch", "secrets", spec.Name, kc.namespace})
	}
	keys := secretKeys(spec)
	p.log.Info("kubernetes secret patched", "run", req.RunID, "step", req.Step, "secret", kc.namespace+"/"+spec.Name, "keys", keys)
	anyKeys := make([]any, len(keys))
	for i, k := range keys {
		anyKeys[i] = k
	}
	return Outcome{
		Output: fmt.Sprintf("secret %s/%s: set %s (values not shown)", kc.namespace, spec.Name, strings.Join(keys, ", ")),
		Result: map[string]any{"secret": spec.Name, "namespace": kc.namespace, "keys": anyKeys, "resource_version": sec.ResourceVersion},
	}, nil
}

// preflightPatchSecret checks that every value file can be read (without
// showing it), that drguard may patch the Secret, and that the Secret
// exists (a server-side dry run of an empty patch: drguard never reads a
// Secret).
func preflightPatchSecret(d Deps) PreflightFunc[secretParams] {
	b := newKubeBase(d)
	return func(ctx context.Context, req Request, p *secretParams) Preflight {
		pf := b.preflight(ctx, req, p.kubeCommon, p.Name, []kubeNeed{{"patch", "", "secrets", ""}},
			func(ctx context.Context, kc kubeCall) error {
				_, err := kc.client.CoreV1().Secrets(kc.namespace).Patch(ctx, p.Name, types.MergePatchType, emptyPatch, dryRunPatch)
				return err
			})
		for _, k := range slices.Sorted(maps.Keys(p.ValueFiles)) {
			if _, err := b.cfg.ReadSecret(p.ValueFiles[k]); err != nil {
				pf.fail("value_file", k, "%v", err)
			} else {
				pf.pass("value_file", k, "%s can be read (not shown)", p.ValueFiles[k])
			}
		}
		return pf
	}
}
