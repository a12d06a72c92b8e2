package naming

import (
	"cmp"
	"slices"
	"strings"
)

// CompareHostnames is the one order of hostnames everywhere names are
// listed: runs of digits compare as numbers, so web-2 sorts before web-10,
// and the rest byte by byte. Equal numbers written with different leading
// zeros fall back to the byte order, so the order is total.
func CompareHostnames(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			ei, ej := digitsEnd(a, i), digitsEnd(b, j)
			na, nb := strings.TrimLeft(a[i:ei], "0"), strings.TrimLeft(b[j:ej], "0")
			if len(na) != len(nb) {
				return cmp.Compare(len(na), len(nb))
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			i, j = ei, ej
			continue
		}
		if a[i] != b[j] {
			return cmp.Compare(int(a[i]), int(b[j]))
		}
		i++
		j++
	}
	if c := cmp.Compare(len(a)-i, len(b)-j); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// CompareNames is the one order of a ledger's names: by service, the
// master first, then by number (web-2 before web-10), then by hostname
// (CompareHostnames) for names outside the scheme. Only those four fields
// count.
func CompareNames(a, b *Record) int {
	if c := strings.Compare(a.Service, b.Service); c != 0 {
		return c
	}
	if c := cmp.Compare(rank(a.Role), rank(b.Role)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Ordinal, b.Ordinal); c != 0 {
		return c
	}
	return CompareHostnames(a.Hostname, b.Hostname)
}

// rank puts a master before everything else of its service.
func rank(r Role) int {
	if r == RoleMaster {
		return 0
	}
	return 1
}

// SortByHostname sorts records in CompareHostnames order.
func SortByHostname(recs []Record) {
	slices.SortFunc(recs, func(a, b Record) int { return CompareHostnames(a.Hostname, b.Hostname) })
}

// SameRecord reports whether a and b say the same to a reader of names:
// hostname, holder, address, service, aliases and rev. Timestamps and the
// hold-back fields are the planner's business and do not count.
func SameRecord(a, b Record) bool {
	return a.Hostname == b.Hostname && a.IP == b.IP && a.InstanceID == b.InstanceID &&
		a.Service == b.Service && a.Rev == b.Rev && slices.Equal(a.Aliases, b.Aliases)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
