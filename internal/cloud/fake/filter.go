package fake

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// stateCodes are EC2's instance state codes.
var stateCodes = map[naming.InstanceState]int{
	naming.StatePending:      0,
	naming.StateRunning:      16,
	naming.StateShuttingDown: 32,
	naming.StateTerminated:   48,
	naming.StateStopping:     64,
	naming.StateStopped:      80,
}

// errInvalidFilter is EC2's answer to a filter name it does not know.
type errInvalidFilter struct{ name string }

func (e errInvalidFilter) Error() string {
	return fmt.Sprintf("The filter '%s' is invalid", e.name)
}

// checkFilters rejects filter names the fake does not implement, as EC2
// rejects names it does not know (InvalidParameterValue).
func checkFilters(filters []cloud.Filter) error {
	for _, f := range filters {
		switch {
		case strings.HasPrefix(f.Name, "tag:") && len(f.Name) > 4:
		case f.Name == "tag-key", f.Name == "tag-value", f.Name == "instance-state-name",
			f.Name == "instance-state-code", f.Name == "instance-id", f.Name == "private-ip-address":
		default:
			return errInvalidFilter{f.Name}
		}
	}
	return nil
}

// matches applies EC2 filter semantics: every filter must match, any of a
// filter's values may; values take the * and ? wildcards.
func matches(in *naming.Instance, filters []cloud.Filter) bool {
	for _, f := range filters {
		if !matchFilter(in, f) {
			return false
		}
	}
	return true
}

func matchFilter(in *naming.Instance, f cloud.Filter) bool {
	switch {
	case strings.HasPrefix(f.Name, "tag:"):
		v, ok := in.Tags[strings.TrimPrefix(f.Name, "tag:")]
		return ok && anyMatch(f.Values, v)
	case f.Name == "tag-key":
		for k := range in.Tags {
			if anyMatch(f.Values, k) {
				return true
			}
		}
		return false
	case f.Name == "tag-value":
		for _, v := range in.Tags {
			if anyMatch(f.Values, v) {
				return true
			}
		}
		return false
	case f.Name == "instance-state-name":
		return anyMatch(f.Values, string(in.State))
	case f.Name == "instance-state-code":
		return slices.Contains(f.Values, strconv.Itoa(stateCodes[in.State]))
	case f.Name == "instance-id":
		return anyMatch(f.Values, in.ID)
	case f.Name == "private-ip-address":
		return in.PrivateIP != "" && anyMatch(f.Values, in.PrivateIP)
	}
	return false
}

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if p == s {
			return true
		}
		// path.Match's * does not cross '/', EC2's does; tag values rarely
		// hold '/', and exact matches are handled above.
		if strings.ContainsAny(p, "*?") {
			if ok, _ := path.Match(p, s); ok {
				return true
			}
		}
	}
	return false
}
