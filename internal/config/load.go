package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"
)

// Known tells the loader which actions and probe kinds exist, so that the
// loader need not import remediate/ or detect/probe.
type Known struct {
	// Actions maps an action name to a validator of a step's unrendered
	// params (strings in them are still templates). A nil validator
	// accepts any params. A nil map accepts any action.
	Actions map[string]func(params map[string]any) error
	// ProbeTypes lists the probe kinds. A nil map accepts any probe type.
	ProbeTypes map[string]bool
	// Probes maps a probe kind to a check of a probe's target and params,
	// run after every target is known. A missing entry checks nothing.
	Probes map[string]func(p Probe, c *Config) error
	// TemplateFuncs are the functions, beyond text/template's built-ins,
	// that step params templates may call. Nil means none.
	TemplateFuncs template.FuncMap
	// Offline says the configuration is loaded by a command that serves
	// no HTTP (backup, restore, verify): the webhook's credentials are
	// then not required.
	Offline bool
}

// Load reads the configuration file at path and parses it with Parse.
func Load(path string, known Known) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := fmt.Sprintf("cannot read the configuration file: %v", err)
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			msg = "the configuration file does not exist"
		case errors.As(err, &pe):
			msg = fmt.Sprintf("cannot read the configuration file: %v", pe.Err)
		}
		return nil, Problems{{File: path, Message: msg, Severity: SeverityError}}
	}
	return Parse(data, path, known)
}

// Parse decodes a configuration strictly and checks it: decoding (unknown
// keys, wrong shapes, bad durations), secrets (${ENV} expansion and *_file
// reading, in Secret fields only), defaults, validation of each section,
// then cross-references between sections. It reports every problem it
// finds, not just the first. file names the configuration in messages;
// relative *_file paths are resolved against its directory.
//
// When any problem is an error, Parse returns a nil Config and all problems
// (errors and warnings) as a Problems error. Otherwise the warnings are
// available from Config.Warnings.
func Parse(data []byte, file string, known Known) (*Config, error) {
	ps := newProblems(file)
	c := decode(data, ps)
	ps.locateLines(data)
	if c == nil {
		return nil, ps.sorted()
	}
	c.File = file

	dir := "."
	if file != "" {
		dir = filepath.Dir(file)
	}
	r := &resolver{ps: ps, dir: dir}
	r.resolveSecrets(c)

	applyDefaults(c, func(path string) bool { _, ok := ps.lines[path]; return ok })

	v := &validator{c: c, ps: ps, known: known}
	v.validate()
	v.crossReference()

	if ps.hasErrors() {
		return nil, ps.sorted()
	}
	c.warnings = ps.sorted()
	return c, nil
}
