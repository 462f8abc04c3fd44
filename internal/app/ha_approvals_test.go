package app

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// haGatedStep waits for an approval, then leaves one mark per execution.
const haGatedStep = `
policies:
  - name: gated
    matchers: ['alertname="HAGated"']
    steps:
      - name: mark
        action: exec
        approval: {required: true}
        params:
          argv: ["mktemp", "-p", %q, "ran-{{ .Labels.target }}.XXXXXX"]
`

// TestHAApprovalsOnFollowers: an approval posted to a follower is
// journaled there and honoured by the leader, which runs the step; 50
// concurrent approvals of another step, spread over the replicas, decide
// it once (one 200, the others 409) and run it once.
func TestHAApprovalsOnFollowers(t *testing.T) {
	c := newHACluster(t, haGatedStep)
	c.start(0, "")
	c.start(1, "")
	lead := c.waitLeader(20 * time.Second)
	follower := c.follower(lead)
	// A follower is ready: it takes webhooks, serves the API and records
	// decisions; /readyz says whom it follows.
	code, body := do(t, http.MethodGet, c.replicas[follower].URL+"/readyz", "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), "follower of ") {
		t.Errorf("a follower's /readyz: %d %s, want 200 naming the leader it follows", code, body)
	}
	if code, body := do(t, http.MethodGet, c.replicas[lead].URL+"/readyz", "", nil); code != http.StatusOK || !strings.Contains(string(body), "leader (epoch ") {
		t.Errorf("the leader's /readyz: %d %s", code, body)
	}
	pending := func(target string) string {
		var id string
		testharness.Eventually(t, 15*time.Second, "an approval for "+target, func() bool {
			var list struct{ Approvals []store.Approval }
			getJSON(t, c.replicas[follower].URL+"/remediate", &list)
			for _, a := range list.Approvals {
				if a.Target == target {
					id = a.ID
				}
			}
			return id != ""
		})
		return id
	}
	if !c.post(follower, "firing", "HAGated", "one") || !c.post(lead, "firing", "HAGated", "many") {
		t.Fatal("webhooks refused")
	}

	id := pending("one")
	code, body = do(t, http.MethodPost, c.replicas[follower].URL+"/remediate/"+id+"/approve", approverToken, []byte(`{"comment":"from a follower"}`))
	if code != http.StatusOK {
		t.Fatalf("approve on the follower: %d %s", code, body)
	}
	testharness.Eventually(t, 15*time.Second, "the leader to run the step approved on the follower", func() bool {
		_, run := c.runOf(lead, "HAGated", "one")
		return run != nil && run.State == store.RunSucceeded
	})

	id = pending("many")
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			token := []string{approverToken, approver2}[i%2]
			url := fmt.Sprintf("%s/remediate/%s/approve", c.replicas[i%2].URL, id)
			code, _, err := testharness.Send(http.MethodPost, url, token, nil)
			if err != nil {
				t.Errorf("approval %d: %v", i, err)
				return
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[http.StatusOK] != 1 || codes[http.StatusOK]+codes[http.StatusConflict] != 50 {
		t.Errorf("50 concurrent approvals answered %v, want one 200 and 49 409", codes)
	}
	testharness.Eventually(t, 15*time.Second, "the step to run", func() bool {
		_, run := c.runOf(lead, "HAGated", "many")
		return run != nil && run.State == store.RunSucceeded
	})
	time.Sleep(time.Second)
	for _, tg := range []string{"one", "many"} {
		if got := c.marks("ran-" + tg + "."); got != 1 {
			t.Errorf("%s: the step ran %d times, want once", tg, got)
		}
	}
}
