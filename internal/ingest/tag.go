package ingest

import "strings"

// LogsChronicle is the chronicle that tagged log records (Fluent Forward,
// the Vivo / Fluent Bit style HTTP input) are stored in unless the
// operator or the request names another.
const LogsChronicle = "logs"

// TagTarget maps a Fluent tag to the chronicle and story its records are
// stored in: the one documented rule (docs/protocols.md) of every protocol
// whose records carry a Fluent tag. By default the tag, verbatim, is a
// story of chronicle (LogsChronicle when empty): dots, slashes and any
// UTF-8 are kept, since story names are arbitrary. With tagChronicle, the
// tag's first dot-separated segment names the chronicle and the rest the
// story ("app.web.access" is story "web.access" of chronicle "app"); a tag
// without a dot, or with an empty first or last part, stays a story of
// chronicle. Names are validated where events are appended
// (Pipeline.Story), so an empty or overlong tag is refused there.
func TagTarget(tag, chronicle string, tagChronicle bool) (string, string) {
	if chronicle == "" {
		chronicle = LogsChronicle
	}
	if tagChronicle {
		if i := strings.IndexByte(tag, '.'); i > 0 && i < len(tag)-1 {
			return tag[:i], tag[i+1:]
		}
	}
	return chronicle, tag
}
