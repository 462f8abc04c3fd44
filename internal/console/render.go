package console

import (
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/params"
	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// pageNames are the console's pages, one template file each beside
// layout.html.
var pageNames = []string{"signin", "error", "incidents", "incident", "approvals", "recoverability"}

// parsePages parses each page with the layout.
func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// maxExcerpt bounds the output a step shows: its last bytes, where errors
// usually are.
const maxExcerpt = 2000

var funcs = template.FuncMap{
	"when":     when,
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"duration": duration,
	"seconds":  func(s float64) string { return duration(time.Duration(s * float64(time.Second))) },
	"stepTime": stepTime,
	"excerpt":  excerpt,
	"params":   params.Lines,
	"short":    func(s string) string { return s[:min(len(s), 12)] },
	"summary": func(in store.Incident) string {
		return detect.Detection{Labels: in.Labels, Annotations: in.Annotations}.Summary()
	},
	"stateClass": stateClass,
	"labels":     labelList,
}

// when writes a time in UTC to the second; the zero time is a dash.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// duration writes d as configuration writes durations (1h2m3s), to the
// second; under a second in milliseconds.
func duration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return model.Duration(d.Round(time.Second)).String()
}

// stepTime is how long a step ran, or has been running at now.
func stepTime(st store.Step, now time.Time) string {
	switch {
	case st.StartedAt.IsZero():
		return ""
	case st.EndedAt.IsZero():
		return duration(now.Sub(st.StartedAt)) + " so far"
	}
	return duration(st.EndedAt.Sub(st.StartedAt))
}

// excerpt is the end of a step's output, saying how much is left out.
func excerpt(s string) string {
	if len(s) <= maxExcerpt {
		return s
	}
	cut := len(s) - maxExcerpt
	for cut < len(s) && s[cut]&0xC0 == 0x80 { // not in the middle of a UTF-8 sequence
		cut++
	}
	return fmt.Sprintf("[%d bytes before]…\n%s", cut, s[cut:])
}

// labelList writes labels as name="value", sorted.
func labelList(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return strings.Join(parts, ", ")
}

// stateClass is the CSS class of a state: good, bad, waiting or neutral.
func stateClass(state any) string {
	switch fmt.Sprint(state) {
	case "succeeded", "approved", "resolved", "ok", "success":
		return "state good"
	case "failed", "rejected", "expired", "interrupted", "blocked", "failure", "over":
		return "state bad"
	case "pending", "running", "awaiting_approval", "open", "firing":
		return "state wait"
	}
	return "state"
}

// statusOf maps the engine's errors (as the API classifies them) to HTTP
// status codes.
func statusOf(err error) int {
	switch {
	case errors.Is(err, server.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, server.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, server.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, server.ErrBadInput):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
