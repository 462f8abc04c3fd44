package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// approveUsage is the approve command's synopsis.
const approveUsage = "usage: drguard approve ID [--reject] --server=URL --token-file=F [--comment=TEXT] [--params-hash=HASH]"

// cmdApprove decides a gated step on a running drguard through its API
// and prints what was decided, with the hash of the step it was bound to.
func cmdApprove(ctx context.Context, args []string, stdio IO) int {
	fs := newFlags("approve", stdio)
	reject := fs.Bool("reject", false, "reject instead of approve")
	srv := fs.String("server", "", "drguard's URL, e.g. http://drguard:9095")
	tokenFile := fs.String("token-file", "", "file holding your API token")
	comment := fs.String("comment", "", "comment recorded in the audit log")
	hash := fs.String("params-hash", "", "the paramsHash you reviewed (GET /remediate); the decision is refused (409) if the step no longer matches it")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitUsage
	}
	if len(pos) != 1 || *srv == "" || *tokenFile == "" {
		fmt.Fprintln(stdio.Stderr, approveUsage)
		return ExitUsage
	}
	// A relative --token-file is relative to the working directory.
	token, err := (&config.Config{}).ReadSecret(config.SecretRef{File: *tokenFile})
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard approve: token: %v\n", err)
		return ExitFail
	}
	verb := "approve"
	if *reject {
		verb = "reject"
	}
	body, _ := json.Marshal(map[string]string{"comment": *comment, "paramsHash": *hash})
	u := strings.TrimRight(*srv, "/") + "/remediate/" + url.PathEscape(pos[0]) + "/" + verb
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard approve: %v\n", err)
		return ExitUsage
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token.Reveal()))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard approve: %v\n", err)
		return ExitFail
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stdio.Stderr, "drguard approve: %s: %s\n", resp.Status, strings.TrimSpace(string(out)))
		return ExitFail
	}
	var a struct {
		State      string `json:"state"`
		Status     string `json:"status"`
		ParamsHash string `json:"paramsHash"`
	}
	if err := json.Unmarshal(out, &a); err != nil {
		fmt.Fprintf(stdio.Stderr, "drguard approve: unexpected answer: %v\n", err)
		return ExitFail
	}
	what := map[string]string{"approve": "approved", "reject": "rejected"}[verb]
	if a.State == "pending" {
		what = "approval recorded; " + a.Status
	}
	fmt.Fprintf(stdio.Stdout, "%s: %s (params %s)\n", pos[0], what, a.ParamsHash)
	return ExitOK
}
