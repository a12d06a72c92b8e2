package client

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

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

// Selector picks names. The zero Selector picks every name.
type Selector struct {
	// Service limits the read to one service (the ledger reads it by
	// index); "" reads every service.
	Service string
	// Labels matches each name's labels (see NameLabels); nil matches
	// every name.
	Labels labels.Selector
}

// Label keys of a name (NameLabels) and of a service (ServiceLabels).
const (
	LabelService     = "service"
	LabelServiceType = "service_type"
	LabelState       = "state"
	LabelRole        = "role"
)

// NameLabels are the labels a selector sees on a name: its service,
// service_type, state and, in a masterful service, role (absent for
// iterative names, so "!role" picks them).
func NameLabels(n Name) labels.Set {
	set := labels.Set{LabelService: n.Service, LabelServiceType: n.ServiceType, LabelState: string(n.State)}
	if n.Role != "" {
		set[LabelRole] = n.Role
	}
	return set
}

// ServiceLabels are the labels a selector sees on a service.
func ServiceLabels(s Service) labels.Set {
	return labels.Set{LabelService: s.Service, LabelServiceType: s.ServiceType}
}

// Matches reports whether n is selected.
func (sel Selector) Matches(n Name) bool {
	if sel.Service != "" && n.Service != sel.Service {
		return false
	}
	return sel.Labels == nil || sel.Labels.Matches(NameLabels(n))
}

// ParseSelector reads a kubectl label selector (k8s.io/apimachinery's
// syntax: "service=web", "service in (web,db),state!=free", "!role") over
// a name's labels (NameLabels). Keys are checked, service_type values
// normalised (1.x's "masterful" and 2.x's "Masterful" both work) and
// state values checked, so a typo is an error rather than an empty list.
// Empty selects everything. Errors name the bad key or value; the caller
// names the selector (and where it came from).
func ParseSelector(s string) (Selector, error) {
	sel, err := parseLabelSelector(s, []string{LabelService, LabelServiceType, LabelState, LabelRole})
	if err != nil {
		return Selector{}, err
	}
	out := Selector{Labels: sel}
	// One service asked for by equality: read only its records.
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if op := r.Operator(); r.Key() == LabelService && (op == selection.Equals || op == selection.DoubleEquals) {
			out.Service = r.ValuesUnsorted()[0]
		}
	}
	return out, nil
}

// ParseServiceSelector reads a label selector over a service's labels
// (ServiceLabels: service and service_type), as ParseSelector does.
func ParseServiceSelector(s string) (labels.Selector, error) {
	return parseLabelSelector(s, []string{LabelService, LabelServiceType})
}

func parseLabelSelector(s string, keys []string) (labels.Selector, error) {
	reqs, err := labels.ParseToRequirements(s)
	if err != nil {
		return nil, err
	}
	sel := labels.NewSelector()
	for _, r := range reqs {
		key := r.Key()
		if !slices.Contains(keys, key) {
			return nil, fmt.Errorf("key %q: want one of %s", key, strings.Join(keys, ", "))
		}
		vals := r.ValuesUnsorted()
		for i, v := range vals {
			switch key {
			case LabelServiceType:
				scheme, err := naming.ParseScheme(v)
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", key, err)
				}
				vals[i] = strings.ToLower(string(scheme))
			case LabelState:
				if v != string(Bound) && v != string(Free) && v != string(Pending) {
					return nil, fmt.Errorf("state %q: want bound, free or pending", v)
				}
			}
		}
		nr, err := labels.NewRequirement(key, r.Operator(), vals)
		if err != nil {
			return nil, err
		}
		sel = sel.Add(*nr)
	}
	return sel, nil
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
