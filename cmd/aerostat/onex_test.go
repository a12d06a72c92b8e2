package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// The interoperability suite runs Aerostat 1.x's own client code
// (testdata/onex.py, modelled line by line on urbanairship/aerostat) with
// Debian's python3-pymongo against the ledger. Debian's interpreter, not
// whatever python3 is first on PATH: the package installs for it.
const debianPython = "/usr/bin/python3"

var onexSetup struct {
	once    sync.Once
	version string
	skip    string
}

// needPymongo makes sure Debian's python3-pymongo is importable, installing
// it with apt-get when missing (root only), once per test binary. It skips
// the test, saying why, when the package cannot be had here.
func needPymongo(t *testing.T) {
	t.Helper()
	onexSetup.once.Do(func() {
		version := func() (string, error) {
			out, err := exec.Command(debianPython, "-c", "import pymongo; print(pymongo.version)").CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		if v, err := version(); err == nil {
			onexSetup.version = v
			return
		}
		if _, err := os.Stat(debianPython); err != nil {
			onexSetup.skip = fmt.Sprintf("Debian's %s is missing (%v): the 1.x interop suite needs it and python3-pymongo", debianPython, err)
			return
		}
		if os.Geteuid() != 0 {
			onexSetup.skip = "python3-pymongo is not installed and installing it needs root: run `apt-get install -y python3-pymongo`"
			return
		}
		aptGet := func(args ...string) ([]byte, error) {
			cmd := exec.Command("apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			return cmd.CombinedOutput()
		}
		install := []string{"install", "-y", "--no-install-recommends", "python3-pymongo"}
		if _, err := aptGet(install...); err != nil {
			// A fresh image has no package lists ("Unable to locate
			// package"): read them once, then install again.
			if out, err := aptGet("update"); err != nil {
				onexSetup.skip = fmt.Sprintf("python3-pymongo is not installed and `apt-get update` failed (%v):\n%s", err, out)
				return
			}
			if out, err := aptGet(install...); err != nil {
				onexSetup.skip = fmt.Sprintf("python3-pymongo is not installed and `apt-get install -y python3-pymongo` failed (%v):\n%s", err, out)
				return
			}
		}
		v, err := version()
		if err != nil {
			onexSetup.skip = fmt.Sprintf("python3-pymongo installed but not importable by %s: %v: %s", debianPython, err, v)
			return
		}
		onexSetup.version = v
	})
	if onexSetup.skip != "" {
		// make test sets AEROSTAT_REQUIRE_PYMONGO: there the suite must
		// run, unless AEROSTAT_SKIP_PYMONGO=<why> skips it on purpose.
		if os.Getenv("AEROSTAT_REQUIRE_PYMONGO") != "" && os.Getenv("AEROSTAT_SKIP_PYMONGO") == "" {
			t.Fatalf("%s (make test requires the 1.x interop suite; AEROSTAT_SKIP_PYMONGO=<why> skips it on purpose)", onexSetup.skip)
		}
		t.Skip(onexSetup.skip)
	}
}

// onex is a 1.x client on one ledger database. w is the write concern of
// its writes: 0 as pymongo.Connection wrote in 1.x (errors never seen), 1
// as MongoClient (a failed write kills the client).
type onex struct {
	uri, db string
	w       int
}

func newOnex(t *testing.T, db string, w int) *onex {
	t.Helper()
	needPymongo(t)
	return &onex{uri: ledgertest.URI(t), db: db, w: w}
}

// run runs one 1.x operation (see testdata/onex.py) and decodes its JSON
// answer into out. A 1.x client that died returns an error carrying its
// traceback.
func (o *onex) run(t *testing.T, out any, args ...string) error {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "onex.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(debianPython, append([]string{script, o.uri, o.db, strconv.Itoa(o.w)}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("1.x %s (pymongo %s, w=%d): %w\n%s", strings.Join(args, " "), onexSetup.version, o.w, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("1.x %s: output %q: %w", strings.Join(args, " "), stdout.String(), err)
	}
	return nil
}

// must is run that fails the test when the 1.x client dies.
func (o *onex) must(t *testing.T, out any, args ...string) {
	t.Helper()
	if err := o.run(t, out, args...); err != nil {
		t.Fatal(err)
	}
}

// register is 1.x --register for instance id at ip with the words of an
// /etc/aerostat_info line; it returns the name 1.x picked.
func (o *onex) register(t *testing.T, id, ip string, info ...string) string {
	t.Helper()
	var out struct{ Hostname *string }
	o.must(t, &out, append([]string{"register", id, ip}, info...)...)
	if out.Hostname == nil {
		return ""
	}
	return *out.Hostname
}

// update is 1.x's updater over the whole collection: the /etc/hosts lines
// it would write.
func (o *onex) update(t *testing.T) []string {
	t.Helper()
	var out struct{ Hosts []string }
	o.must(t, &out, "update")
	return out.Hosts
}

type onexLookup struct {
	HostnameExists bool    `json:"hostname_exists"`
	GetHostname    *string `json:"get_hostname"`
	GetMaster      *string `json:"get_master"`
	CheckMaster    bool    `json:"check_master"`
}

func (o *onex) lookup(t *testing.T, service, id, hostname string) onexLookup {
	t.Helper()
	var out onexLookup
	o.must(t, &out, "lookup", service, id, hostname)
	return out
}

// checkOnexFields checks that every document of db's servers collection
// carries the six 1.x fields with 1.x's types: hostname, ip, service,
// service_type and instance_id strings, aliases an array or null.
func checkOnexFields(t *testing.T, db string) {
	t.Helper()
	ro := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true})
	cur, err := ro.Client().Database(db).Collection("servers").Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no documents to check")
	}
	for _, d := range docs {
		for _, f := range []string{"hostname", "ip", "service", "service_type", "instance_id"} {
			if v, err := d.LookupErr(f); err != nil || v.Type != bson.TypeString {
				t.Errorf("document %s: %s is %v (err %v), want a string", d, f, v.Type, err)
			}
		}
		if v, err := d.LookupErr("aliases"); err != nil || (v.Type != bson.TypeArray && v.Type != bson.TypeNull) {
			t.Errorf("document %s: aliases is %v (err %v), want an array or null", d, v.Type, err)
		}
	}
}
