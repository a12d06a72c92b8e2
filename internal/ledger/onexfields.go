package ledger

import (
	"regexp"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// onexStrings are the fields 1.x clients read from every document as
// strings (the updater: item['ip'], item['hostname']; the registrar and
// aerostatd: service, service_type, instance_id).
var onexStrings = []string{"ip", "service", "service_type", "instance_id"}

var (
	slaveName     = regexp.MustCompile(`^(.+)-slave-[0-9]+$`)
	iterativeName = regexp.MustCompile(`^(.+)-[0-9]+$`)
)

// onexRepair finds the 1.x fields raw lacks or holds with a type 1.x
// clients cannot read, and the values that repair them, taken from rec
// (as decoded) after inferRecord. aliases null is kept: 1.x wrote it. A
// string aliases becomes a list: 1.x's updater would iterate it character
// by character.
func onexRepair(raw bson.Raw, rec naming.Record) (fields []string, set bson.D) {
	value := map[string]string{"ip": rec.IP, "service": rec.Service, "service_type": string(rec.Scheme), "instance_id": rec.InstanceID}
	if rec.Scheme == naming.Iterative || rec.Scheme == naming.Masterful {
		// 1.x wrote the lower-case words.
		value["service_type"] = map[naming.Scheme]string{naming.Iterative: "iterative", naming.Masterful: "masterful"}[rec.Scheme]
	}
	for _, f := range onexStrings {
		if v, err := raw.LookupErr(f); err != nil || v.Type != bson.TypeString {
			fields = append(fields, f)
			set = append(set, bson.E{Key: f, Value: value[f]})
		}
	}
	if v, err := raw.LookupErr("aliases"); err != nil || (v.Type != bson.TypeArray && v.Type != bson.TypeNull) {
		a := bson.A{}
		for _, s := range rec.Aliases {
			a = append(a, s)
		}
		fields = append(fields, "aliases")
		set = append(set, bson.E{Key: "aliases", Value: a})
	}
	return fields, set
}

// inferRecord fills what a 1.x document left out from its hostname: the
// service when missing ("web-3" is web's, "db-master" and "db-slave-2"
// db's), the scheme when service_type is missing and the name is only a
// masterful one, and then role and ordinal.
func inferRecord(raw bson.Raw, rec naming.Record) naming.Record {
	if rec.Service == "" {
		switch h := rec.Hostname; {
		case len(h) > len("-master") && h[len(h)-len("-master"):] == "-master":
			rec.Service, rec.Scheme = h[:len(h)-len("-master")], naming.Masterful
		case slaveName.MatchString(h):
			rec.Service, rec.Scheme = slaveName.FindStringSubmatch(h)[1], naming.Masterful
		case iterativeName.MatchString(h):
			rec.Service = iterativeName.FindStringSubmatch(h)[1]
		}
		if naming.ValidateLabel("service", rec.Service) != nil {
			rec.Service = ""
		}
	}
	if v, err := raw.LookupErr("service_type"); (err != nil || v.Type != bson.TypeString) && rec.Service != "" {
		if _, _, it := naming.ParseHostname(rec.Service, naming.Iterative, rec.Hostname); !it {
			if _, _, ms := naming.ParseHostname(rec.Service, naming.Masterful, rec.Hostname); ms {
				rec.Scheme = naming.Masterful
			}
		}
	}
	if role, ord, ok := naming.ParseHostname(rec.Service, rec.Scheme, rec.Hostname); ok {
		rec.Role, rec.Ordinal = role, ord
	}
	return rec
}
