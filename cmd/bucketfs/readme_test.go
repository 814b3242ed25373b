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
// server: .demo/env holds its endpoint and keys, as does the AWS profile
// "work" (its endpoint_url is the server), the buckets "demo" and
// "my-bucket" are fresh ones, /mnt/... are temporary directories, and
// bucketfs is the binary under test.
func TestREADMECommands(t *testing.T) {
	srv := server(t)
	demo := newBucket(t, srv, nil)
	mine := newBucket(t, srv, map[string]object{"photos/2024/beach.jpg": {body: []byte("jpeg")}})
	keys := srv.Env()
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
		home, bin := filepath.Join(dir, "home"), filepath.Join(dir, "bin")
		files := map[string]string{
			".demo/env":             "export S3_ENDPOINT=" + srv.Endpoint + "\nexport " + strings.Join(keys, "\nexport ") + "\n",
			"home/.aws/config":      "[profile work]\nendpoint_url = " + srv.Endpoint + "\nregion = us-east-1\n",
			"home/.aws/credentials": "[work]\n" + awsCredentials(keys),
		}
		for name, content := range files {
			path := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(binary, filepath.Join(bin, "bucketfs")); err != nil {
			t.Fatal(err)
		}
		mnt := func(name string) string { return filepath.Join(dir, "mnt", name) }
		for _, m := range []string{"s3", "photos"} {
			t.Cleanup(func() { unmountForTest(t, mnt(m)) })
		}
		script := strings.NewReplacer("/mnt/s3", mnt("s3"), "/mnt/photos", mnt("photos"),
			" demo ", " "+demo+" ", " my-bucket", " "+mine).Replace(block)
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("README block failed: %v\n%s\noutput:\n%s", err, block, out)
			continue
		}
		for _, m := range []string{"s3", "photos"} {
			if isMounted(mnt(m)) {
				t.Errorf("README block left %s mounted", mnt(m))
			}
		}
		ran++
	}
	if ran < 2 {
		t.Fatalf("%d README blocks ran, want the two quick starts", ran)
	}
	if got := headRaw(t, srv, demo, "hello.txt"); got.ContentLength == nil || *got.ContentLength != 6 {
		t.Errorf("hello.txt after the quick start: %+v", got)
	}
}

// awsCredentials turns the server's AWS_* variables into the lines of a
// credentials file's profile.
func awsCredentials(env []string) string {
	var lines string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN":
			lines += strings.ToLower(k) + " = " + v + "\n"
		}
	}
	return lines
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
