// Package docscheck keeps the user guide's Go code true: every Go block of
// docs/user_guide/*.md must be quoted from a Go file of the repository (an example program or
// an Example function), which the tests compile and run.
package docscheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

// normalize drops each line's leading white space and the blank lines, and turns the
// placeholders the guide uses for left-out code ("// ...", "...") into nothing.
func normalize(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "..." || l == "// ..." {
			continue
		}
		out = append(out, l)
	}
	return out
}

// corpus returns the normalized text of every Go file of the repository, one line a
// string, joined by newlines.
func corpus(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b.WriteString(strings.Join(normalize(string(src)), "\n"))
		b.WriteString("\n\x00\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGuideCodeIsQuoted(t *testing.T) {
	root := filepath.Join("..", "..")
	src := corpus(t, root)
	pages, err := filepath.Glob(filepath.Join(root, "docs", "user_guide", "*.md"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no guide pages: %v", err)
	}
	for _, page := range pages {
		md, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goBlock.FindAllStringSubmatch(string(md), -1) {
			lines := normalize(m[1])
			if len(lines) == 0 {
				continue
			}
			// Each run of lines between placeholders must appear as it is.
			for _, run := range runs(m[1]) {
				// Whole lines: a quoted line may not be part of a longer one.
				if !strings.Contains("\n"+src, "\n"+strings.Join(run, "\n")+"\n") {
					t.Errorf("%s: a Go block is not quoted from the code; it starts:\n%s", filepath.Base(page), strings.Join(run[:min(len(run), 4)], "\n"))
					break
				}
			}
		}
	}
}

// runs splits a block at its placeholders into runs of normalized lines.
func runs(block string) [][]string {
	var out [][]string
	var cur []string
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l == "..." || l == "// ..." || strings.HasPrefix(l, "// ...") {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		if l != "" {
			cur = append(cur, l)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
