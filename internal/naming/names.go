package naming

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseScheme accepts the 1.x service types ("iterative", "masterful") and
// the Aerostat 2 spellings ("Iterative", "Masterful"), in any letter case.
func ParseScheme(s string) (Scheme, error) {
	switch {
	case strings.EqualFold(s, string(Iterative)):
		return Iterative, nil
	case strings.EqualFold(s, string(Masterful)):
		return Masterful, nil
	}
	return "", fmt.Errorf("scheme %q: must be Iterative or Masterful", s)
}

// ValidateLabel checks that value is an RFC 1123 label as Aerostat writes
// them: 1-63 characters of lowercase letters, digits and '-', not starting
// or ending with '-'. Lowercase only, because names are compared as strings
// and two spellings of one host would be two names.
func ValidateLabel(field, value string) error {
	if err := checkLabel(value); err != nil {
		return fmt.Errorf("%s %q: %w", field, value, err)
	}
	return nil
}

func checkLabel(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	if len(v) > 63 {
		return fmt.Errorf("must be at most 63 characters, not %d", len(v))
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-':
			if i == 0 || i == len(v)-1 {
				return errors.New("must not start or end with '-'")
			}
		case c >= 'A' && c <= 'Z':
			return errors.New("must be lowercase")
		default:
			return fmt.Errorf("must hold only a-z, 0-9 and '-', not %q", string(rune(c)))
		}
	}
	return nil
}

// ValidateHostname checks a dotted host name (an alias such as
// "db.internal"): RFC 1123 labels joined by dots, at most 253 characters.
func ValidateHostname(field, value string) error {
	if value == "" {
		return fmt.Errorf("%s %q: must not be empty", field, value)
	}
	if len(value) > 253 {
		return fmt.Errorf("%s %q: must be at most 253 characters, not %d", field, value, len(value))
	}
	for _, l := range strings.Split(value, ".") {
		if err := checkLabel(l); err != nil {
			return fmt.Errorf("%s %q: label %q: %w", field, value, l, err)
		}
	}
	return nil
}

// ValidateIP checks a plain IPv4 or IPv6 address (no zone, no prefix).
func ValidateIP(field, value string) error {
	a, err := netip.ParseAddr(value)
	if err != nil {
		return fmt.Errorf("%s %q: not an IP address", field, value)
	}
	if a.Zone() != "" {
		return fmt.Errorf("%s %q: must not have a zone", field, value)
	}
	return nil
}

// Hostname forms a name: <service>-N (Iterative), <service>-master or
// <service>-slave-N (Masterful). It does not validate.
func Hostname(service string, scheme Scheme, role Role, ordinal int) string {
	if scheme == Masterful {
		if role == RoleMaster {
			return service + "-master"
		}
		return service + "-slave-" + strconv.Itoa(ordinal)
	}
	return service + "-" + strconv.Itoa(ordinal)
}

// ParseHostname is the inverse of Hostname. It reports ok only for names
// Hostname would produce: no leading zeros, slaves from 1, ordinals that fit
// an int32 (larger numbers are not names Aerostat ever handed out).
func ParseHostname(service string, scheme Scheme, hostname string) (role Role, ordinal int, ok bool) {
	rest, found := strings.CutPrefix(hostname, service+"-")
	if !found || service == "" {
		return RoleNone, 0, false
	}
	switch scheme {
	case Iterative:
		n, ok := parseOrdinal(rest)
		return RoleNone, n, ok
	case Masterful:
		if rest == "master" {
			return RoleMaster, 0, true
		}
		num, found := strings.CutPrefix(rest, "slave-")
		if !found {
			return RoleNone, 0, false
		}
		n, ok := parseOrdinal(num)
		if !ok || n < 1 {
			return RoleNone, 0, false
		}
		return RoleSlave, n, true
	}
	return RoleNone, 0, false
}

func parseOrdinal(s string) (int, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > 1<<31-1 {
		return 0, false
	}
	return n, true
}

// Info is the content of a 1.x /etc/aerostat_info file.
type Info struct {
	Service string
	Scheme  Scheme
	Aliases []string
}

// ParseInfo reads the 1.x /etc/aerostat_info format
// `service [service_type [alias…]]`: whitespace separated, service_type
// defaults to Iterative. Lines starting with '#' are skipped; words may
// span lines, as 1.x split the whole file. Repeated aliases are dropped.
func ParseInfo(data []byte) (Info, error) {
	var words []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		words = append(words, strings.Fields(line)...)
	}
	if len(words) == 0 {
		return Info{}, errors.New("aerostat_info: empty, want `service [service_type [alias...]]`")
	}
	info := Info{Service: words[0], Scheme: Iterative}
	if err := ValidateLabel("aerostat_info service", info.Service); err != nil {
		return Info{}, err
	}
	if len(words) > 1 {
		s, err := ParseScheme(words[1])
		if err != nil {
			return Info{}, fmt.Errorf("aerostat_info service_type: %w", err)
		}
		info.Scheme = s
	}
	seen := map[string]bool{}
	for _, a := range words[min(2, len(words)):] {
		if err := ValidateHostname("aerostat_info alias", a); err != nil {
			return Info{}, err
		}
		if !seen[a] {
			seen[a] = true
			info.Aliases = append(info.Aliases, a)
		}
	}
	return info, nil
}
