package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version overrides the module version of the build info when set at build
// time with -ldflags "-X main.version=...".
var version string

// versionText is what `bucketfs version` prints: the module version (the
// tag for `go install ...@v1.2.3`, a pseudo-version from the checkout for
// `go build`), the commit it was built from, and the Go that built it.
func versionText() string {
	v, commit, when, dirty := "unknown", "unknown", "", false
	info, ok := debug.ReadBuildInfo()
	if ok {
		v = info.Main.Version
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if version != "" {
		v = version
	}
	if commit != "unknown" {
		if when != "" {
			commit += " (" + when + ")"
		}
		if dirty {
			commit += " with uncommitted changes"
		}
	}
	return fmt.Sprintf("bucketfs %s\ncommit %s\n%s %s/%s\n", v, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
