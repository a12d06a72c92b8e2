package ledger

import (
	"strings"
	"testing"
)

func TestRedactURI(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"password":         {"mongodb://app:pw@db:27017/?authSource=admin", "mongodb://app:xxxxx@db:27017/?authSource=admin"},
		"no password":      {"mongodb://app@db/", "mongodb://app@db/"},
		"no user":          {"mongodb://db:27017/", "mongodb://db:27017/"},
		"srv":              {"mongodb+srv://app:pw@cluster.example.com/", "mongodb+srv://app:xxxxx@cluster.example.com/"},
		"unparseable":      {"mongodb://app:pw@[::1/", "mongodb://app:xxxxx@[::1/"},
		"unparseable @ pw": {"mongodb://app:p@w@[::1/x", "mongodb://app:xxxxx@[::1/x"},
		"bare host":        {"admin-master", "admin-master"},
		"several hosts":    {"mongodb://app:pw@a:1,b:2/?replicaSet=rs", "mongodb://app:xxxxx@a:1,b:2/?replicaSet=rs"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := RedactURI(tc.in)
			if got != tc.want {
				t.Errorf("RedactURI(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzRedactURI(f *testing.F) {
	f.Add("mongodb://u:secretpw@h/")
	f.Add("mongodb://u:secretpw@[::1/")
	f.Fuzz(func(t *testing.T, pw string) {
		if strings.ContainsAny(pw, "@/?#[]:%") {
			return
		}
		pw = "Z9q" + pw // never a substring of the rest of the URI
		for _, uri := range []string{"mongodb://u:" + pw + "@h:1/", "mongodb://u:" + pw + "@[::1/", "mongodb://u:" + pw + "@a,b/?x=1"} {
			if got := RedactURI(uri); strings.Contains(got, pw) {
				t.Errorf("RedactURI(%q) = %q keeps the password", uri, got)
			}
		}
	})
}
