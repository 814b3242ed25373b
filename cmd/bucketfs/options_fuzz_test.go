package main

import (
	"strings"
	"testing"
)

// FuzzParseArgs: any command line (arguments split at NUL) is parsed or
// refused with one line, never a panic, and a refusal never repeats the
// value given to an option that names a secret.
func FuzzParseArgs(f *testing.F) {
	for _, seed := range []string{
		"b\x00/m", "-o\x00ro,uid=1,allow_other\x00b:p/\x00/m", "--secret-access-key\x00hunter2\x00b\x00/m",
		"-o\x00aws_secret=hunter2\x00b\x00/m", "presign\x00-r\x00--expires\x0099d\x00x", "pending", "info\x00-x",
		"--stat-ttl=\x00b\x00/m", "--part-size\x0099999999999999999999\x00b\x00/m", "b:../x\x00/m",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		_, err := ParseArgs(args, nil)
		if err == nil {
			return
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("%q: error of more than one line: %v", args, err)
		}
		for i, a := range args {
			secretOption := strings.HasPrefix(a, "-") && strings.Contains(strings.ToLower(a), "secret")
			given := strings.Contains(a, "=hunter2") || (i+1 < len(args) && args[i+1] == "hunter2")
			if i > 0 && args[i-1] == "-o" && strings.Contains(strings.ToLower(a), "secret") {
				secretOption, given = true, strings.Contains(a, "=hunter2")
			}
			if secretOption && given && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("%q: the error repeats a secret: %v", args, err)
			}
		}
	})
}
