package demo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/table"
)

// story runs the demo's chapters in order; each changes the fleet or the
// ledger, waits until every agent's file has the change, shows the names
// and states what must now hold.
func (w *world) story(ctx context.Context) error {
	o := w.opts
	w.say("Aerostat demo: an embedded MongoDB-wire store (%s), a simulated EC2 fleet,", w.uri)
	w.say("the standalone controller serving its feed (http://%s) and %d node agents", w.feedLn.Addr(), len(w.nodes))
	w.say("following it (%s writes %s). Nothing else needed.", w.nodes[0].name, o.HostsFile)
	w.say("After each change: the time until the feed saw every agent's hosts file at its rev.")

	names, err := w.launchFleet(ctx)
	if err != nil {
		return err
	}
	victims, err := w.terminateTwo(ctx, names)
	if err != nil {
		return err
	}
	if names, err = w.refillGaps(ctx, victims); err != nil {
		return err
	}
	if err := w.changeOver(ctx, names); err != nil {
		return err
	}
	if err := w.showHostsFile(ctx); err != nil {
		return err
	}
	w.checkAll(ctx)
	return nil
}

// settle waits until every agent has the change, shows the names and
// returns them (kept in the report under key).
func (w *world) settle(ctx context.Context, key string) ([]client.Name, error) {
	if err := w.converge(ctx); err != nil {
		return nil, err
	}
	if err := w.show(ctx, key); err != nil {
		return nil, err
	}
	return w.report.Names[key], nil
}

// launchFleet (1): a fresh fleet is named in launch order.
func (w *world) launchFleet(ctx context.Context) ([]client.Name, error) {
	o := w.opts
	w.begin("Launch %d web nodes (iterative) and %d db nodes (masterful), tagged aerostat:service.", o.Web, o.DB)
	web := w.launch("web", naming.Iterative, o.Web)
	db := w.launch("db", naming.Masterful, o.DB)
	names, err := w.settle(ctx, "launch")
	if err != nil {
		return nil, err
	}
	ok := true
	for i, id := range web {
		ok = ok && holder(names, "web-"+strconv.Itoa(i)) == id
	}
	w.fact(fmt.Sprintf("web-0..web-%d are held in launch order", o.Web-1), ok, "")
	w.fact("the first db node is db-master", holder(names, "db-master") == db[0], "")
	w.pause(ctx)
	return names, nil
}

// terminateTwo (2): terminated nodes leave gaps; it returns their names.
func (w *world) terminateTwo(ctx context.Context, names []client.Name) ([]string, error) {
	victims := []string{"web-1", "web-3"}
	if w.opts.Web < 4 {
		victims = []string{"web-0", "web-1"}
	}
	w.begin("Terminate the nodes holding %s: their names become gaps (free), kept for reuse.", strings.Join(victims, " and "))
	var victimIDs []string
	for _, h := range victims {
		victimIDs = append(victimIDs, holder(names, h))
	}
	if err := w.fleet.Terminate(victimIDs...); err != nil {
		return nil, fmt.Errorf("terminating %v: %w", victimIDs, err)
	}
	names, err := w.settle(ctx, "terminate")
	if err != nil {
		return nil, err
	}
	free := 0
	for _, n := range names {
		if slices.Contains(victims, n.Hostname) && n.State == client.Free {
			free++
		}
	}
	w.fact(strings.Join(victims, " and ")+" are free after termination", free == len(victims), "")
	w.pause(ctx)
	return victims, nil
}

// refillGaps (3): new nodes fill the gaps, smallest first, then take a new
// number.
func (w *world) refillGaps(ctx context.Context, victims []string) ([]client.Name, error) {
	o := w.opts
	w.begin("Launch 3 web nodes: the gaps are refilled smallest first (%s), then a new number (web-%d).", strings.Join(victims, ", "), o.Web)
	fresh := w.launch("web", naming.Iterative, 3)
	names, err := w.settle(ctx, "relaunch")
	if err != nil {
		return nil, err
	}
	var webNames, want []string
	for _, n := range names {
		if n.Service == "web" {
			webNames = append(webNames, n.Hostname+"="+string(n.State))
		}
	}
	for i := 0; i <= o.Web; i++ {
		want = append(want, "web-"+strconv.Itoa(i)+"="+string(client.Bound))
	}
	w.fact(fmt.Sprintf("after relaunch the web names are web-0..web-%d, all bound", o.Web),
		slices.Equal(webNames, want), strings.Join(webNames, " "))
	order := holder(names, victims[0]) == fresh[0] && holder(names, victims[1]) == fresh[1] &&
		holder(names, "web-"+strconv.Itoa(o.Web)) == fresh[2]
	w.fact("the oldest new node took the smallest gap, the newest a new number", order, "")
	w.pause(ctx)
	return names, nil
}

// changeOver (4): a slave asks to be master.
func (w *world) changeOver(ctx context.Context, names []client.Name) error {
	promoted := holder(names, "db-slave-1")
	oldMaster := holder(names, "db-master")
	w.begin("Promote db-slave-1 (%s) to master, as `aerostat promote` on that node does:", promoted)
	w.say("      the old master takes the lowest free slave number, like a new node.")
	if err := w.promote(ctx, "db", promoted); err != nil {
		return err
	}
	names, err := w.settle(ctx, "promote") // the controller keeps the new master
	if err != nil {
		return err
	}
	w.fact("the promoted slave holds db-master", holder(names, "db-master") == promoted, "")
	w.fact("the old master holds db-slave-1, the lowest free slave number", holder(names, "db-slave-1") == oldMaster, "")
	w.pause(ctx)
	return nil
}

// showHostsFile (5): what every node resolves.
func (w *world) showHostsFile(ctx context.Context) error {
	w.begin("%s keeps the managed block of %s (the lines outside it are left alone):", w.nodes[0].name, w.opts.HostsFile)
	data, err := os.ReadFile(w.opts.HostsFile)
	if err != nil {
		return err
	}
	w.say("")
	for _, line := range strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n") {
		fmt.Fprint(w.out, "    "+line)
	}
	w.say("")
	w.pause(ctx)
	return nil
}

// checkAll (6): the invariants, checked for real against the store, the
// fleet, the feed and the files, with the chapters' facts.
func (w *world) checkAll(ctx context.Context) {
	w.begin("Check the invariants against the store, the fleet, the feed and the files:")
	w.report.Checks = w.check(ctx)
	for _, c := range append(slices.Clone(w.report.Checks), w.report.Facts...) {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		line := "      " + mark + " " + c.Name
		if !c.OK && c.Detail != "" {
			line += ": " + c.Detail
		}
		w.say("%s", line)
	}
	if w.report.OK() {
		w.say("")
		w.say("All invariants held.")
	}
}

// prepareHostsFile gives a new file a few lines of its own (to show they
// are kept) and drops the block a previous demo left: this demo's store is
// new, so its empty name set is the truth.
func (w *world) prepareHostsFile() error {
	_, err := os.Stat(w.opts.HostsFile)
	if errors.Is(err, fs.ErrNotExist) {
		seed := "# demo hosts file: lines outside the AEROSTAT block are yours and kept\n127.0.0.1\tlocalhost\n::1\tlocalhost\n"
		return os.WriteFile(w.opts.HostsFile, []byte(seed), 0o644)
	}
	if err != nil {
		return err
	}
	_, err = w.writer.Sync(nil, nil, hostsfile.SyncOptions{Authoritative: true, KeepLegacy: true})
	return err
}

// promote makes instanceID master of a masterful service through the
// ledger's compare-and-set, with the planner: the same path as `aerostat
// promote` on a node.
func (w *world) promote(ctx context.Context, service, instanceID string) error {
	in, err := w.fleet.List(ctx, controllers.DefaultFilters(service)...)
	if err != nil {
		return fmt.Errorf("listing %s: %w", service, err)
	}
	// The policy the controller stored, as a node's `aerostat promote` reads it.
	reap := controllers.DefaultReap()
	if p, found, err := w.store.Policy(ctx, service); err != nil {
		return err
	} else if found {
		reap = p.Reap()
	}
	res, err := ledger.Claim(ctx, w.store, service, func(recs []naming.Record) (naming.Result, error) {
		return naming.Plan(naming.Input{
			Policy:   naming.Policy{Service: service, Scheme: naming.Masterful, DesiredMaster: instanceID, Reap: reap},
			Records:  recs,
			Observed: naming.Observation{Instances: in, Complete: true},
			Now:      time.Now(),
		})
	})
	if err != nil {
		return fmt.Errorf("promoting %s: %w", instanceID, err)
	}
	for _, c := range res.Changes {
		w.say("      promote: %s", naming.Describe(c))
	}
	if len(res.Changes) > 0 {
		w.written()
	}
	return nil
}

// check verifies the invariants on the real store, fleet, feed and files.
func (w *world) check(ctx context.Context) []Check {
	rev, err := w.store.Rev(ctx)
	if err != nil {
		return []Check{{Name: "read the ledger rev", Detail: err.Error()}}
	}
	// Every agent has the final rev before its file is compared.
	c, _, err := w.waitConverged(ctx, rev)
	conv := converged(c, rev, w.nodeNames())
	if err != nil && conv.OK {
		conv.OK, conv.Detail = false, err.Error()
	}
	recs, err := w.store.Records(ctx, "")
	if err != nil {
		return []Check{conv, {Name: "read the ledger", Detail: err.Error()}}
	}
	want, _ := hostsfile.FromRecords(recs)
	files := Check{Name: fmt.Sprintf("the hosts file block of each of the %d agents matches the ledger (%d entries)", len(w.nodes), len(want)), OK: true}
	var bad []string
	for _, n := range w.nodes {
		if fc := checkHostsFile(recs, n.path); !fc.OK {
			bad = append(bad, n.name+": "+fc.Detail)
		}
	}
	if len(bad) > 0 {
		files.OK, files.Detail = false, strings.Join(bad, "; ")
	}
	return []Check{checkUnique(recs), checkNamed(recs, w.fleet.Instances()), conv, files}
}

func checkUnique(recs []naming.Record) Check {
	c := Check{Name: "no duplicate names (one record per name, one name per instance)", OK: true}
	hosts := map[string]int{}
	holders := map[string][]string{}
	for _, r := range recs {
		hosts[r.Hostname]++
		if !r.Free() {
			holders[r.InstanceID] = append(holders[r.InstanceID], r.Hostname)
		}
	}
	var bad []string
	for h, n := range hosts {
		if n > 1 {
			bad = append(bad, fmt.Sprintf("%s has %d records", h, n))
		}
	}
	for id, hs := range holders {
		if len(hs) > 1 {
			bad = append(bad, fmt.Sprintf("%s holds %s", id, strings.Join(hs, ", ")))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		c.OK, c.Detail = false, strings.Join(bad, "; ")
	}
	return c
}

func checkNamed(recs []naming.Record, fleet []naming.Instance) Check {
	c := Check{Name: "every running instance is named, with its IP", OK: true}
	byID := map[string]naming.Record{}
	for _, r := range recs {
		if !r.Free() {
			byID[r.InstanceID] = r
		}
	}
	var bad []string
	running := 0
	for _, in := range fleet {
		if in.State != naming.StateRunning {
			continue
		}
		running++
		r, ok := byID[in.ID]
		switch {
		case !ok:
			bad = append(bad, in.ID+" has no name")
		case r.IP != in.PrivateIP:
			bad = append(bad, fmt.Sprintf("%s (%s) has IP %s in the ledger, %s in EC2", r.Hostname, in.ID, r.IP, in.PrivateIP))
		}
	}
	for id, r := range byID {
		if !slices.ContainsFunc(fleet, func(in naming.Instance) bool { return in.ID == id && in.State == naming.StateRunning }) {
			bad = append(bad, r.Hostname+" is bound to "+id+", which is not running")
		}
	}
	c.Name += fmt.Sprintf(" (%d running)", running)
	if len(bad) > 0 {
		slices.Sort(bad)
		c.OK, c.Detail = false, strings.Join(bad, "; ")
	}
	return c
}

func checkHostsFile(recs []naming.Record, path string) Check {
	c := Check{Name: "the hosts file block matches the ledger", OK: true}
	data, err := os.ReadFile(path)
	if err != nil {
		c.OK, c.Detail = false, err.Error()
		return c
	}
	f, err := hostsfile.Parse(data)
	if err != nil {
		c.OK, c.Detail = false, err.Error()
		return c
	}
	want, _ := hostsfile.FromRecords(recs)
	got := hostsfile.Normalize(f.Entries)
	if !slices.Equal(got, want) {
		c.OK, c.Detail = false, fmt.Sprintf("file has %v, ledger says %v", got, want)
	}
	c.Name += fmt.Sprintf(" (%d entries)", len(want))
	return c
}

// live keeps everything running: the controller loop (the feed and the
// agents already run), a web node replaced every ChurnEvery, and the
// changes as they happen.
func (w *world) live(ctx context.Context) error {
	out := &lockedWriter{w: w.out}
	w.out = out
	w.say("")
	w.say("Live: the controller and the agents keep running; every %v a web node is replaced.", w.opts.ChurnEvery)
	w.say("Changes are printed as they happen (like kubectl get -w). Ctrl-C to stop.")
	w.say("In another terminal: aerostat get names --ledger %s", w.uri)
	w.say("                     aerostat get nodes --feed http://%s", w.feedLn.Addr())
	w.say("")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.ctrl.Run(ctx) })
	wg.Go(func() { w.churn(ctx) })
	stream := table.NewStream(out, table.Table, time.Now)
	err := w.reader.Watch(ctx, client.Selector{}, stream.Print)
	cancel()
	wg.Wait()
	w.say("")
	w.say("Stopped.")
	return err
}

// churn alternately terminates the oldest running web node and launches a
// new one.
func (w *world) churn(ctx context.Context) {
	t := time.NewTicker(w.opts.ChurnEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n%2 == 1 {
			id := w.launch("web", naming.Iterative, 1)[0]
			w.say("# launched web node %s", id)
			continue
		}
		in, err := w.fleet.List(ctx, cloud.Filter{Name: "tag:" + controllers.TagService, Values: []string{"web"}},
			cloud.Filter{Name: "instance-state-name", Values: []string{string(naming.StateRunning)}})
		if err != nil || len(in) == 0 {
			continue
		}
		victim := in[0]
		if len(in) > 1 {
			victim = in[1]
		}
		if err := w.fleet.Terminate(victim.ID); err == nil {
			w.say("# terminated web node %s", victim.ID)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  interface{ Write([]byte) (int, error) }
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
