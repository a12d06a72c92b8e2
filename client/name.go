package client

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// State says whether a name is held by an instance.
type State string

const (
	// Bound names are held by a running (or not yet released) instance.
	Bound State = "bound"
	// Free names are gaps: released, and handed out again first.
	Free State = "free"
	// Pending is no name: a live instance tagged for a service that holds
	// no record yet (see Unnamed). Its Hostname is "".
	Pending State = "pending"
)

// Roles of names in a masterful service; iterative names have none.
const (
	RoleMaster = "master"
	RoleSlave  = "slave"
)

// Name is one ledger record. The JSON field names are those of the 1.x
// documents (hostname … aliases) plus Aerostat 2's fields; scripts may rely
// on them.
type Name struct {
	Hostname string `json:"hostname"`
	IP       string `json:"ip"`
	Service  string `json:"service"`
	// ServiceType is "iterative" or "masterful", as 1.x wrote it.
	ServiceType string   `json:"service_type"`
	InstanceID  string   `json:"instance_id"`
	Aliases     []string `json:"aliases"`
	State       State    `json:"state"`
	// Ordinal is N in <service>-N and <service>-slave-N; 0 for a master.
	Ordinal int `json:"ordinal"`
	// Role is "master" or "slave" in a masterful service, "" otherwise.
	Role string `json:"role"`
	// UpdatedAt is the time of the last write; null for records 1.x wrote.
	UpdatedAt *time.Time `json:"updated_at"`
	// ClaimedAt is when the current instance got the name; null for a gap.
	ClaimedAt *time.Time `json:"claimed_at,omitempty"`
	// Rev is the ledger revision of the last write (0: written by 1.x).
	Rev int64 `json:"rev"`
}

// Since is when the name entered its current state (claimed, or released
// for a gap); zero when unknown. It is what AGE columns show.
func (n Name) Since() time.Time {
	if n.State == Bound && n.ClaimedAt != nil {
		return *n.ClaimedAt
	}
	if n.UpdatedAt != nil {
		return *n.UpdatedAt
	}
	return time.Time{}
}

func fromRecord(r naming.Record) Name {
	n := Name{
		Hostname:    r.Hostname,
		IP:          r.IP,
		Service:     r.Service,
		ServiceType: strings.ToLower(string(r.Scheme)),
		InstanceID:  r.InstanceID,
		Aliases:     slices.Clone(r.Aliases),
		State:       Bound,
		Ordinal:     r.Ordinal,
		Role:        string(r.Role),
		Rev:         r.Rev,
	}
	if n.Aliases == nil {
		n.Aliases = []string{}
	}
	if r.Free() {
		n.State = Free
	}
	if !r.UpdatedAt.IsZero() {
		t := r.UpdatedAt.UTC()
		n.UpdatedAt = &t
	}
	if !r.ClaimedAt.IsZero() && !r.Free() {
		t := r.ClaimedAt.UTC()
		n.ClaimedAt = &t
	}
	// Documents written by 1.x carry no role or ordinal: read them from
	// the hostname, which is what 1.x went by.
	schemes := []naming.Scheme{r.Scheme}
	if r.Scheme == "" {
		schemes = []naming.Scheme{naming.Iterative, naming.Masterful}
	}
	for _, s := range schemes {
		if role, ord, ok := naming.ParseHostname(r.Service, s, r.Hostname); ok {
			n.Role, n.Ordinal = string(role), ord
			if n.ServiceType == "" {
				n.ServiceType = strings.ToLower(string(s))
			}
			break
		}
	}
	return n
}

// Selector picks names; empty fields match everything.
type Selector struct {
	Service     string
	ServiceType string // iterative|masterful
	State       State
	Role        string
	// Not holds key=value pairs that must not match (from "key!=value").
	Not map[string]string
}

// selectorKeys are the keys a label selector may use.
var selectorKeys = []string{"service", "service_type", "state", "role"}

// ParseSelector reads a kubectl-style selector over the name fields
// service, service_type, state and role: "service=web",
// "service==db,state=bound", "state!=free". Empty selects everything.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	if strings.TrimSpace(s) == "" {
		return sel, nil
	}
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		neg := false
		key, val, ok := strings.Cut(term, "!=")
		if ok {
			neg = true
		} else if key, val, ok = strings.Cut(term, "=="); !ok {
			key, val, ok = strings.Cut(term, "=")
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok || key == "" {
			return Selector{}, fmt.Errorf("selector %q: term %q: want key=value or key!=value", s, term)
		}
		if !slices.Contains(selectorKeys, key) {
			return Selector{}, fmt.Errorf("selector %q: key %q: want one of %s", s, key, strings.Join(selectorKeys, ", "))
		}
		switch key {
		case "service_type":
			if val != "" {
				scheme, err := naming.ParseScheme(val)
				if err != nil {
					return Selector{}, fmt.Errorf("selector %q: %w", s, err)
				}
				val = strings.ToLower(string(scheme))
			}
		case "state":
			if val != string(Bound) && val != string(Free) && val != string(Pending) {
				return Selector{}, fmt.Errorf("selector %q: state %q: want bound, free or pending", s, val)
			}
		}
		if neg {
			if sel.Not == nil {
				sel.Not = map[string]string{}
			}
			sel.Not[key] = val
			continue
		}
		switch key {
		case "service":
			sel.Service = val
		case "service_type":
			sel.ServiceType = val
		case "state":
			sel.State = State(val)
		case "role":
			sel.Role = val
		}
	}
	return sel, nil
}

// Matches reports whether n is selected.
func (sel Selector) Matches(n Name) bool {
	fields := map[string]string{"service": n.Service, "service_type": n.ServiceType, "state": string(n.State), "role": n.Role}
	for k, want := range map[string]string{"service": sel.Service, "service_type": sel.ServiceType, "state": string(sel.State), "role": sel.Role} {
		if want != "" && fields[k] != want {
			return false
		}
	}
	for k, v := range sel.Not {
		if fields[k] == v {
			return false
		}
	}
	return true
}

// Service summarises one service's names.
type Service struct {
	Service     string `json:"service"`
	ServiceType string `json:"service_type"`
	Bound       int    `json:"bound"`
	Gaps        int    `json:"gaps"`
	// Master is the instance id holding the master name,
	// as in NamingService status ("" for iterative services or no master).
	Master string `json:"master"`
	// Ready is the NamingService Ready condition ("True", "False",
	// "Unknown"); empty when read from the ledger alone.
	Ready string `json:"ready,omitempty"`
	// Since is the oldest time among the service's names (or the
	// NamingService's creation); null when unknown.
	Since *time.Time `json:"since"`
	// HoldBack is how long a released name is kept from other instances
	// under the policy in force (the one every writer applies); null when
	// no controller stored one (writers then use the 3m default).
	HoldBack *Duration `json:"holdBack,omitempty"`
	// PolicySource says who set that policy ("controller --standalone",
	// "NamingService web"); "default" when none is stored.
	PolicySource string `json:"policySource,omitempty"`
}

// Duration is a time.Duration that encodes as Go's text form ("3m0s").
type Duration struct{ time.Duration }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	d.Duration = v
	return nil
}

// Summarize groups names (sorted or not) into services sorted by name.
func Summarize(names []Name) []Service {
	by := map[string]*Service{}
	var order []string
	for _, n := range names {
		s := by[n.Service]
		if s == nil {
			s = &Service{Service: n.Service, ServiceType: n.ServiceType}
			by[n.Service] = s
			order = append(order, n.Service)
		}
		if s.ServiceType == "" {
			s.ServiceType = n.ServiceType
		}
		if n.State == Free {
			s.Gaps++
		} else {
			s.Bound++
			if n.Role == RoleMaster {
				s.Master = n.InstanceID
			}
		}
		if t := n.Since(); !t.IsZero() && (s.Since == nil || t.Before(*s.Since)) {
			s.Since = &t
		}
	}
	slices.Sort(order)
	out := make([]Service, 0, len(order))
	for _, name := range order {
		out = append(out, *by[name])
	}
	return out
}

// Unnamed returns, as Pending names, the live instances among tagged whose
// tagKey tag is a valid service name and that no bound name in names is
// held by: nodes the controller has not named yet, or 1.x registrars that
// lost 1.x's read-then-insert race (their OS hostname is another
// machine's name). Sorted by service, then instance.
func Unnamed(names []Name, tagged []naming.Instance, tagKey string) []Name {
	held := map[string]bool{}
	for _, n := range names {
		if n.State == Bound {
			held[n.InstanceID] = true
		}
	}
	var out []Name
	for _, in := range tagged {
		svc := in.Tags[tagKey]
		if held[in.ID] || naming.ValidateLabel(tagKey, svc) != nil ||
			(in.State != naming.StateRunning && in.State != naming.StatePending) {
			continue
		}
		out = append(out, Name{Service: svc, InstanceID: in.ID, IP: in.PrivateIP, Aliases: []string{}, State: Pending})
	}
	slices.SortFunc(out, func(a, b Name) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return strings.Compare(a.InstanceID, b.InstanceID)
	})
	return out
}
