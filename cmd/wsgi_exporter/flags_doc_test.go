package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryFlagIsDocumented keeps the manual complete: every flag --help shows appears as
// `--name` (or `--[no-]name` for a switch) in README.md or a page under docs/, and every hidden
// alias does not (it only keeps old command lines working).
func TestEveryFlagIsDocumented(t *testing.T) {
	var text strings.Builder
	for _, glob := range []string{"../../README.md", "../../docs/*.md"} {
		paths, err := filepath.Glob(glob)
		if err != nil || len(paths) == 0 {
			t.Fatalf("no documentation at %s (%v)", glob, err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			text.Write(b)
		}
	}
	docs := text.String()
	documented := func(name string) bool {
		for _, form := range []string{"--" + name, "--[no-]" + name, "--no-" + name} {
			for i := strings.Index(docs, form); i >= 0; {
				end := i + len(form)
				if end == len(docs) || !strings.ContainsRune("abcdefghijklmnopqrstuvwxyz0123456789-.", rune(docs[end])) {
					return true
				}
				next := strings.Index(docs[end:], form)
				if next < 0 {
					break
				}
				i = end + next
			}
		}
		return false
	}
	for _, f := range ownFlags(t) {
		if !f.Hidden && !documented(f.Name) {
			t.Errorf("flag --%s is in --help but in neither README.md nor docs/", f.Name)
		}
	}
}
