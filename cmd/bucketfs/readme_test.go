package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlocks returns the README's fenced code blocks of one language.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?ms)^```"+lang+"\n(.*?)^```\n").FindAllStringSubmatch(string(data), -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestREADMEListsEveryOption: the README's option table names every
// option of the parser, with the default Usage shows, and no other.
func TestREADMEListsEveryOption(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(data), "\n## Options\n")
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{} // option -> default
	for _, m := range regexp.MustCompile("(?m)^\\| (?:`-f`, )?`--([a-z-]+)[^`]*` \\| .* \\| (.*) \\|$").FindAllStringSubmatch(section, -1) {
		rows[m[1]] = strings.ReplaceAll(m[2], `\|`, "|")
	}
	for _, opt := range mountOptions {
		def, ok := rows[opt.name]
		switch {
		case !ok:
			t.Errorf("the README's option table lacks --%s", opt.name)
		case def != opt.def:
			t.Errorf("the README gives --%s the default %q; Usage says %q", opt.name, def, opt.def)
		}
		delete(rows, opt.name)
	}
	for name := range rows {
		t.Errorf("the README's option table has --%s, which bucketfs does not", name)
	}
}

// TestREADMECommands runs every shell block of the README, except those
// that say in their first line why they cannot run here, against the test
// server: .demo/env holds its endpoint and keys, the bucket "demo" is a
// fresh one, /mnt/s3 a temporary directory, and bucketfs the binary
// under test.
func TestREADMECommands(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	ran := 0
	for _, block := range readmeBlocks(t, "sh") {
		first, _, _ := strings.Cut(block, "\n")
		if reason, ok := strings.CutPrefix(first, "# not run by the tests:"); ok {
			if strings.TrimSpace(reason) == "" {
				t.Errorf("a block that is not run says no reason:\n%s", block)
			}
			continue
		}
		dir := t.TempDir()
		mnt, bin := filepath.Join(dir, "mnt"), filepath.Join(dir, "bin")
		if err := os.MkdirAll(filepath.Join(dir, ".demo"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(binary, filepath.Join(bin, "bucketfs")); err != nil {
			t.Fatal(err)
		}
		env := "export S3_ENDPOINT=" + srv.Endpoint + "\n"
		for _, kv := range srv.Env() {
			env += "export " + kv + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, ".demo", "env"), []byte(env), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unmountForTest(t, mnt) })
		script := strings.NewReplacer("/mnt/s3", mnt, " demo ", " "+bucket+" ").Replace(block)
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("README block failed: %v\n%s\noutput:\n%s", err, block, out)
			continue
		}
		if isMounted(mnt) {
			t.Errorf("README block left %s mounted", mnt)
		}
		ran++
	}
	if ran == 0 {
		t.Fatal("no README block ran")
	}
	if got := headRaw(t, srv, bucket, "hello.txt"); got.ContentLength == nil || *got.ContentLength != 6 {
		t.Errorf("hello.txt after the quick start: %+v", got)
	}
}

// TestInstallPathMatchesTheModule: the README's go install names this
// package by the module path go.mod declares.
func TestInstallPathMatchesTheModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{.Name}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	path, name, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if name != "main" {
		t.Fatalf("%s is package %s, not a command", path, name)
	}
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := "go install " + path + "@latest"; !strings.Contains(string(data), want) {
		t.Errorf("the README does not say %q", want)
	}
}
