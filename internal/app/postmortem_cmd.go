package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate/postmortem"
)

// postmortemUsage is the postmortem command's synopsis.
const postmortemUsage = `usage: drguard postmortem INCIDENT_ID (--storage.path=DIR | --config.file=F | --server=URL --token-file=F)
       drguard postmortem --drill-run=ID (--storage.path=DIR | --config.file=F | --server=URL --token-file=F)`

// postmortemLockWait is how long the offline command waits for the
// embedded journal: a running daemon holds it for as long as it runs, so
// waiting longer would not help.
const postmortemLockWait = time.Second

// cmdPostmortem prints the post-mortem of an incident (or, with
// --drill-run, of a drill run) as Markdown: read from the journal itself
// (--storage.path, or the journal --config.file configures), or fetched
// from a running drguard (--server).
func cmdPostmortem(ctx context.Context, args []string, stdio IO) int {
	fs := newFlags("postmortem", stdio)
	storage := fs.String("storage.path", "", "the embedded journal's directory, read offline (not while a drguard daemon holds it)")
	file := fs.String("config.file", "", "read the journal this configuration uses (storage.path, or the PostgreSQL journal)")
	srv := fs.String("server", "", "drguard's URL, e.g. http://drguard:9095: fetch the post-mortem from it")
	tokenFile := fs.String("token-file", "", "file holding a viewer's API token (--server)")
	drillRun := fs.String("drill-run", "", "write the post-mortem of this drill run (drl-…) instead of an incident's")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitUsage
	}
	id, kind := *drillRun, "drill run"
	if id == "" && len(pos) == 1 {
		id, kind = pos[0], "incident"
	}
	sources := 0
	for _, s := range []string{*storage, *file, *srv} {
		if s != "" {
			sources++
		}
	}
	switch {
	case id == "" || len(pos) > 1 || (*drillRun != "" && len(pos) > 0):
		fmt.Fprintln(stdio.Stderr, postmortemUsage)
		return ExitUsage
	case sources != 1 || (*srv != "") != (*tokenFile != ""):
		fmt.Fprintln(stdio.Stderr, "drguard postmortem: give one of --storage.path, --config.file, or --server with --token-file\n"+postmortemUsage)
		return ExitUsage
	}
	var md string
	if *srv != "" {
		md, err = fetchPostmortem(ctx, *srv, *tokenFile, kind, id)
	} else {
		md, err = readPostmortem(*storage, *file, kind, id, stdio)
	}
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard postmortem: %v\n", err)
		return ExitFail
	}
	fmt.Fprint(stdio.Stdout, md)
	return ExitOK
}

// fetchPostmortem asks a running drguard for the post-mortem.
func fetchPostmortem(ctx context.Context, srv, tokenFile, kind, id string) (string, error) {
	token, err := (&config.Config{}).ReadSecret(config.SecretRef{File: tokenFile})
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	path := "/api/v1/incidents/" + url.PathEscape(id) + "/postmortem"
	if kind == "drill run" {
		path = "/api/v1/drills/runs/" + url.PathEscape(id) + "/postmortem"
	}
	c := apiClient{base: strings.TrimRight(srv, "/"), token: strings.TrimSpace(token.Reveal())}
	var md string
	err = c.call(ctx, http.MethodGet, path, "text/markdown", http.StatusOK, &md)
	return md, err
}

// readPostmortem reads the records from the journal and writes the
// post-mortem.
func readPostmortem(dir, file, kind, id string, stdio IO) (string, error) {
	st, where, err := openJournalReadOnly(dir, file, stdio)
	if err != nil {
		return "", err
	}
	defer st.Close()
	var md string
	if kind == "drill run" {
		var d postmortem.Drill
		if d, err = postmortem.LoadDrill(st, id); err == nil {
			md = postmortem.DrillMarkdown(d)
		}
	} else {
		var in postmortem.Incident
		if in, err = postmortem.Load(st, id); err == nil {
			md = postmortem.IncidentMarkdown(in)
		}
	}
	if postmortem.IsNotFound(err) {
		return "", fmt.Errorf("no %s %q in the journal %s", kind, id, where)
	}
	return md, err
}

// openJournalReadOnly opens the journal in dir, or the one the
// configuration file uses, to read it. It says which journal it opened.
func openJournalReadOnly(dir, file string, stdio IO) (*store.Store, string, error) {
	if file != "" {
		cfg, ok := loadConfig(file, true, stdio)
		if !ok {
			return nil, "", errors.New("the configuration has errors")
		}
		if cfg.Storage.Type == config.StoragePostgres {
			ctx, cancel := context.WithTimeout(context.Background(), journalOpenTimeout)
			defer cancel()
			st, err := store.OpenPostgres(ctx, cfg.Storage.DSN.Reveal())
			return st, "on PostgreSQL (storage.dsn)", err
		}
		dir = cfg.Storage.Path
	}
	st, err := store.OpenReadOnly(dir, postmortemLockWait)
	if errors.Is(err, store.ErrLocked) {
		return nil, "", fmt.Errorf("the journal in %s is held by a running drguard: ask it instead, with --server=URL --token-file=F", dir)
	}
	return st, "in " + dir, err
}

// postmortemAPI adapts the post-mortem package to the HTTP API's
// Postmortems interface, so that the server does not import it.
type postmortemAPI struct{ st *store.Store }

var _ server.Postmortems = postmortemAPI{}

func (a postmortemAPI) Incident(id string) (string, error) {
	in, err := postmortem.Load(a.st, id)
	if err != nil {
		return "", postmortemErr(err)
	}
	return postmortem.IncidentMarkdown(in), nil
}

func (a postmortemAPI) DrillRun(id string) (string, error) {
	d, err := postmortem.LoadDrill(a.st, id)
	if err != nil {
		return "", postmortemErr(err)
	}
	return postmortem.DrillMarkdown(d), nil
}

// postmortemErr classifies an unknown id as the API's not found.
func postmortemErr(err error) error {
	if postmortem.IsNotFound(err) {
		return apiError{kind: server.ErrNotFound, err: err}
	}
	return err
}
