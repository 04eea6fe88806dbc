package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Version is set at release time with
// -ldflags "-X github.com/chronostream/chronostream/internal/cli.Version=v1.2.3";
// otherwise the module version or VCS revision recorded by the Go toolchain
// is reported, so that every binary can be traced to its source.
var Version = ""

func version(stdout io.Writer) int {
	fmt.Fprintln(stdout, versionString())
	return exitOK
}

// releaseVersion is the bare version ("dev" for a build from a checkout),
// as /health and /ping report it.
func releaseVersion() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "dev"
	}
	return v
}

func versionString() string {
	v, rev, dirty := releaseVersion(), "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	s := "chronostream " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		s += " (" + rev + ")"
	}
	return fmt.Sprintf("%s %s %s/%s", s, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
