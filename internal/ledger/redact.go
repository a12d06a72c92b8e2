package ledger

import (
	"net/url"
	"strings"
)

// RedactURI returns uri with its password, if any, replaced by "xxxxx",
// for error messages and logs. It also copes with URIs that do not parse
// (those are the ones most likely to end up in an error message).
func RedactURI(uri string) string {
	if u, err := url.Parse(uri); err == nil {
		if _, has := u.User.Password(); !has {
			return uri
		}
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 && strings.LastIndex(rest[:i], "@") >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return uri
	}
	user, _, hasPass := strings.Cut(authority[:at], ":")
	if !hasPass {
		return uri
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
