package testharness

import (
	"fmt"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// PageProblems is a smoke check of an HTML page for accessibility and for
// what a strict Content-Security-Policy forbids. It returns what is wrong:
//
//   - the document has a language (<html lang>) and a <title>;
//   - headings are in order: one h1, first, and no level skipped going down;
//   - every form field (input but hidden, submit and button; select;
//     textarea) has a label: a <label for> of its id, a <label> around it,
//     or aria-label / aria-labelledby;
//   - every button has text, every image alt text;
//   - no inline script (a <script> without src, on* event attributes,
//     javascript: URLs) and no inline style (<style>, style attributes);
//   - every POST form carries a CSRF token (a hidden input named csrf).
func PageProblems(page string) []string {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return []string{"not HTML: " + err.Error()}
	}
	c := &pageChecker{labelFor: map[string]bool{}}
	c.walk(doc, false)
	for _, f := range c.fields {
		if !f.labelled && !c.labelFor[f.id] {
			c.problem("form field %s has no label", f.desc)
		}
	}
	if !c.lang {
		c.problem("<html> has no lang")
	}
	if !c.title {
		c.problem("the page has no <title>")
	}
	if c.h1 != 1 {
		c.problem("%d h1 headings, want 1", c.h1)
	}
	return c.problems
}

type field struct {
	id, desc string
	labelled bool
}

type pageChecker struct {
	problems     []string
	labelFor     map[string]bool
	fields       []field
	lastHeading  int
	h1           int
	lang, title  bool
	formIsPost   bool
	formHasToken bool
}

func (c *pageChecker) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// walk checks n and its children; inLabel says n is inside a <label>.
func (c *pageChecker) walk(n *html.Node, inLabel bool) {
	if n.Type == html.ElementNode {
		c.element(n, inLabel)
		inLabel = inLabel || n.DataAtom == atom.Label
	}
	for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
		c.walk(ch, inLabel)
	}
	if n.Type == html.ElementNode && n.DataAtom == atom.Form && c.formIsPost && !c.formHasToken {
		action, _ := attr(n, "action")
		c.problem("POST form %s has no CSRF token", action)
	}
}

func (c *pageChecker) element(n *html.Node, inLabel bool) {
	for _, a := range n.Attr {
		switch {
		case strings.HasPrefix(a.Key, "on"):
			c.problem("<%s %s> is an inline event handler", n.Data, a.Key)
		case a.Key == "style":
			c.problem("<%s> has a style attribute", n.Data)
		case (a.Key == "href" || a.Key == "src" || a.Key == "action") && strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:"):
			c.problem("<%s %s> is a javascript: URL", n.Data, a.Key)
		}
	}
	switch n.DataAtom {
	case atom.Html:
		_, c.lang = attr(n, "lang")
	case atom.Title:
		c.title = text(n) != ""
	case atom.Script:
		if _, ok := attr(n, "src"); !ok {
			c.problem("inline <script>")
		}
	case atom.Style:
		c.problem("inline <style>")
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		level := int(n.Data[1] - '0')
		if level == 1 {
			c.h1++
		}
		if c.lastHeading == 0 && level != 1 {
			c.problem("the first heading is h%d, not h1", level)
		}
		if c.lastHeading > 0 && level > c.lastHeading+1 {
			c.problem("heading h%d %q follows h%d: a level is skipped", level, text(n), c.lastHeading)
		}
		c.lastHeading = level
	case atom.Label:
		if id, ok := attr(n, "for"); ok {
			c.labelFor[id] = true
		}
	case atom.Form:
		method, _ := attr(n, "method")
		c.formIsPost, c.formHasToken = strings.EqualFold(method, "post"), false
	case atom.Input, atom.Select, atom.Textarea:
		typ, _ := attr(n, "type")
		name, _ := attr(n, "name")
		if typ == "hidden" && name == "csrf" {
			c.formHasToken = true
		}
		if n.DataAtom == atom.Input && (typ == "hidden" || typ == "submit" || typ == "button") {
			return
		}
		id, _ := attr(n, "id")
		_, aria := attr(n, "aria-label")
		_, ariaBy := attr(n, "aria-labelledby")
		c.fields = append(c.fields, field{id: id, desc: fmt.Sprintf("<%s name=%q>", n.Data, name), labelled: inLabel || aria || ariaBy})
	case atom.Button:
		if _, aria := attr(n, "aria-label"); text(n) == "" && !aria {
			c.problem("a button has no text")
		}
	case atom.Img:
		if _, ok := attr(n, "alt"); !ok {
			c.problem("an image has no alt text")
		}
	}
}
