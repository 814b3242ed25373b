package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestVersionNamesTheCommit: `bucketfs version` prints the module version,
// the commit and the Go version from the build info, not a placeholder.
func TestVersionNamesTheCommit(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("bucketfs version: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("bucketfs version printed %q, want three lines", out)
	}
	if v := strings.TrimPrefix(lines[0], "bucketfs "); v == lines[0] || v == "dev" || v == "(devel)" || v == "unknown" {
		t.Errorf("version line %q names no version", lines[0])
	}
	if !strings.HasPrefix(lines[2], runtime.Version()+" ") {
		t.Errorf("Go line %q, want %s", lines[2], runtime.Version())
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if os.Getenv("BUCKETFS_BIN") != "" || err != nil {
		return // a binary built elsewhere, or no checkout: its commit is unknown here
	}
	if want := "commit " + strings.TrimSpace(string(head)); !strings.HasPrefix(lines[1], want) {
		t.Errorf("commit line %q, want %q", lines[1], want)
	}
}
