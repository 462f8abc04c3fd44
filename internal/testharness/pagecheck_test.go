package testharness

import (
	"strings"
	"testing"
)

func TestPageProblems(t *testing.T) {
	good := `<!doctype html><html lang="en"><head><title>t</title><script src="/a.js"></script></head><body>
<h1>A</h1><h2>B</h2><h3>C</h3><h2>D</h2>
<form method="post" action="/x"><input type="hidden" name="csrf" value="t">
<label for="c">Comment</label><input id="c" name="comment"><label>Reason <input name="r"></label>
<select aria-label="state" name="s"></select><button>Go</button></form>
<form method="get"><input name="q" aria-labelledby="h"></form><img src="/i.png" alt="">
</body></html>`
	if p := PageProblems(good); len(p) != 0 {
		t.Errorf("a good page has problems: %v", p)
	}
	cases := []struct{ name, page, want string }{
		{"inline script", `<html lang="en"><title>t</title><h1>A</h1><script>alert(1)</script></html>`, "inline <script>"},
		{"event handler", `<html lang="en"><title>t</title><h1 onclick="x()">A</h1></html>`, "inline event handler"},
		{"style element", `<html lang="en"><title>t</title><style>p{}</style><h1>A</h1></html>`, "inline <style>"},
		{"style attribute", `<html lang="en"><title>t</title><h1 style="color:red">A</h1></html>`, "style attribute"},
		{"javascript URL", `<html lang="en"><title>t</title><h1>A</h1><a href="javascript:x()">x</a></html>`, "javascript: URL"},
		{"unlabelled field", `<html lang="en"><title>t</title><h1>A</h1><form><input name="q"></form></html>`, `form field <input name="q"> has no label`},
		{"skipped level", `<html lang="en"><title>t</title><h1>A</h1><h3>C</h3></html>`, "follows h1: a level is skipped"},
		{"two h1", `<html lang="en"><title>t</title><h1>A</h1><h1>B</h1></html>`, "2 h1 headings"},
		{"first heading", `<html lang="en"><title>t</title><h2>B</h2><h1>A</h1></html>`, "the first heading is h2"},
		{"no lang", `<html><title>t</title><h1>A</h1></html>`, "no lang"},
		{"no title", `<html lang="en"><h1>A</h1></html>`, "no <title>"},
		{"empty button", `<html lang="en"><title>t</title><h1>A</h1><button></button></html>`, "a button has no text"},
		{"no CSRF token", `<html lang="en"><title>t</title><h1>A</h1><form method="post" action="/approve"><button>Go</button></form></html>`, "POST form /approve has no CSRF token"},
		{"image", `<html lang="en"><title>t</title><h1>A</h1><img src="x"></html>`, "no alt text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if p := strings.Join(PageProblems(c.page), "; "); !strings.Contains(p, c.want) {
				t.Errorf("problems %q; want %q", p, c.want)
			}
		})
	}
}
