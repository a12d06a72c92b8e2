package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// row is one line of the table: a value per fleet size.
type row struct {
	section string
	label   string
	cell    func(n int) string
	note    string
}

func printTable(out io.Writer, cfg config, res results) {
	ix := indexResults(res)
	rows := slices.Concat(
		convergenceRows(cfg, ix),
		costRows(ix),
		legacyModelRows(cfg, ix),
		plannerRows(ix),
		agentRows(cfg, res, ix),
		bootstrapRows(ix),
		scaleRows(ix),
	)
	header := []string{"metric"}
	for _, n := range ix.sizes {
		header = append(header, "N="+commas(n))
	}
	header = append(header, "target / note")
	var lines [][]string
	section := ""
	for _, r := range rows {
		if r.section != section {
			section = r.section
			lines = append(lines, []string{"**" + section + "**"})
		}
		line := []string{r.label}
		for _, n := range ix.sizes {
			line = append(line, r.cell(n))
		}
		lines = append(lines, append(line, r.note))
	}
	fmt.Fprintf(out, "Aerostat bench — %s, %d CPUs (%s), load %s → %s, %s, %.0f s\n\n",
		res.Machine.When, res.Machine.NumCPU, res.Machine.CPU, res.Machine.LoadStart, res.Machine.LoadEnd, res.Machine.Go, res.Seconds)
	writeMarkdown(out, header, lines)
	for _, sr := range res.Scenarios {
		for _, n := range sr.Notes {
			fmt.Fprintf(out, "\nnote (N=%s): %s", commas(sr.N), n)
		}
	}
	fmt.Fprintln(out)
}

// resultsByN are the results of each kind by fleet size, and every size
// any of them has (the table's columns).
type resultsByN struct {
	scen   map[int]scenarioResult
	legacy map[int]legacyConvergence
	plan   map[int]plannerResult
	boot   map[int]bootstrapResult
	scale  map[int]scaleResult
	sizes  []int
}

func indexResults(res results) resultsByN {
	ix := resultsByN{scen: map[int]scenarioResult{}, legacy: map[int]legacyConvergence{}, plan: map[int]plannerResult{},
		boot: map[int]bootstrapResult{}, scale: map[int]scaleResult{}}
	for i, s := range res.Scenarios {
		ix.scen[s.N] = s
		ix.legacy[s.N] = res.Legacy1x[i]
		ix.sizes = append(ix.sizes, s.N)
	}
	for _, p := range res.Planner {
		ix.plan[p.N] = p
		ix.sizes = append(ix.sizes, p.N)
	}
	for _, b := range res.Bootstrap {
		ix.boot[b.N] = b
		ix.sizes = append(ix.sizes, b.N)
	}
	for _, r := range res.Scale {
		ix.scale[r.N] = r
		ix.sizes = append(ix.sizes, r.N)
	}
	slices.Sort(ix.sizes)
	ix.sizes = slices.Compact(ix.sizes)
	return ix
}

// cell is a row's cell at each size: f of that size's result, "—" where
// there is none.
func cell[T any](byN map[int]T, f func(T) string) func(int) string {
	return func(n int) string {
		r, ok := byN[n]
		if !ok {
			return "—"
		}
		return f(r)
	}
}

// convergenceRows: how fast a change reaches every hosts file, beside the
// model of 1.x.
func convergenceRows(cfg config, ix resultsByN) []row {
	conv := fmt.Sprintf("Convergence, p50 / p99 / max (%d agents; controller poll %v; feed long-poll)", cfg.agents, cfg.poll)
	return []row{
		{conv, "launch (tagged) → name bound in ledger", cell(ix.scen, func(r scenarioResult) string { return fmtDist(r.LaunchToBound) }), "bounded by the poll interval"},
		{conv, "launch (tagged) → in every hosts file", cell(ix.scen, func(r scenarioResult) string { return fmtDist(r.LaunchToFiles) }), ""},
		{conv, "aerostat register → name bound", cell(ix.scen, func(r scenarioResult) string { return fmtDist(r.RegisterToBound) }), ""},
		{conv, "aerostat register → in every hosts file", cell(ix.scen, func(r scenarioResult) string { return fmtDist(r.RegisterToFiles) }), "target p99 < 2 s at 1,000"},
		{conv, "bound → in every hosts file", cell(ix.scen, func(r scenarioResult) string { return fmtDist(r.BoundToFiles) }), "feed + agents"},
		{conv, "terminate → old address gone from every file", cell(ix.scen, func(r scenarioResult) string { return fmtDist(r.TerminateToFiles) }), ""},
		{conv, "model of 1.x: register → in every hosts file", cell(ix.legacy, func(r legacyConvergence) string { return fmtDist(r.RegisterToFiles) }), "1.x: ~60 s"},
		{conv, "model of 1.x: terminate → gone from every file", cell(ix.legacy, func(r legacyConvergence) string { return fmtDist(r.TerminateToFiles) }), "1.x: ~120 s"},
		{conv, "changes measured (unfinished)", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%d (%d)", r.ChurnEvents, r.UnfinishedChanges)
		}), "hosts files checked against the ledger after"},
	}
}

// costRows: what a controller pass, the initial naming and a registration
// cost the store and EC2.
func costRows(ix resultsByN) []row {
	costs := "Ledger and EC2 per controller pass"
	return []row{
		{costs, "initial fleet: bulk insert of the oldest records", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%s for %s", fmtSec(r.SeedBulkSeconds), commas(r.SeedBulk))
		}), "the records the controller would write"},
		{costs, "initial fleet: controller names the newest", cell(ix.scen, func(r scenarioResult) string {
			if r.SeedWrites == 0 {
				return "—"
			}
			return fmt.Sprintf("%s for %s (%s/bind)", fmtSec(r.SeedSeconds), commas(r.SeedWrites), fmtSec(r.SeedSeconds/float64(r.SeedWrites)))
		}), "one write per bind; bind cost grows with N"},
		{costs, "idle pass: time", cell(ix.scen, func(r scenarioResult) string { return fmtSec(r.Steady.Seconds) }), ""},
		{costs, "idle pass: CPU (controller + in-process store, EC2)", cell(ix.scen, func(r scenarioResult) string { return fmtSec(r.IdleCPUPerPassMs / 1000) }), "scenario process CPU; agents idle; controller alone: see at scale"},
		{costs, "idle pass: ledger writes", cell(ix.scen, func(r scenarioResult) string { return fmt.Sprintf("%.1f", r.Steady.Writes) }), "target 0"},
		{costs, "idle pass: ledger reads (records read)", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%.0f (%.0f) + %.0f rev", r.Steady.Reads, r.Steady.DocsRead, r.Steady.RevReads)
		}), ""},
		{costs, "idle pass: EC2 calls", cell(ix.scen, func(r scenarioResult) string { return fmt.Sprintf("%.1f", r.Steady.EC2Calls) }), "1,000 instances a page"},
		{costs, "churn: ledger writes (binds + releases)", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%d (%d + %d)", r.ControllerWrites, r.ControllerBinds, r.ControllerFrees)
		}), "target ~1 per bind or release"},
		{costs, "churn: pass time / EC2 calls per pass (failed)", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%s / %.1f (%d of %d)", fmtSec(r.Churn.Seconds), r.Churn.EC2Calls, r.Churn.Errors, r.Churn.Passes)
		}), "a failed pass (e.g. lost CAS) re-plans next tick"},
		{costs, "store: one read of all records / delta / write", cell(ix.scen, func(r scenarioResult) string {
			o := r.StoreOps
			return fmt.Sprintf("%s / %s / %s", fmtSec(o.ReadMs/1000), fmtSec(o.DeltaMs/1000), fmtSec(o.WriteMs/1000))
		}), "mean, queueing on the one store included"},
		{costs, "register: claim time p50 (writes/claim)", cell(ix.scen, func(r scenarioResult) string {
			if r.Claims == 0 {
				return "—"
			}
			return fmt.Sprintf("%s (%.1f, %d lost CAS)", fmtSec(r.ClaimTime.P50), float64(r.ClaimWrites)/float64(r.Claims), r.ClaimConflicts)
		}), "during churn: queued behind passes and feed reads"},
		{costs, "register alone on the store (writes/claim)", cell(ix.scen, func(r scenarioResult) string {
			if len(r.ClaimQuiet) == 0 {
				return "—"
			}
			q := slices.Clone(r.ClaimQuiet)
			slices.Sort(q)
			return fmt.Sprintf("%s, 3 store ops", fmtSec(q[len(q)/2]))
		}), "read service + rev + CAS write; vs 1.x below"},
	}
}

// legacyModelRows: 1.x's queries replayed on the same store.
func legacyModelRows(cfg config, ix resultsByN) []row {
	model := fmt.Sprintf("Model of 1.x (its queries replayed on the same store; %v server + %v client polls)", cfg.legacyServerPoll, cfg.legacyClientPoll)
	return []row{
		{model, "model of 1.x: register, gap path", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%s, %d queries", fmtSec(r.Legacy.RegisterGapMs/1000), r.Legacy.RegisterGapOps)
		}), "gap sorted as strings, no claim"},
		{model, "model of 1.x: register, count path", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%s, %d queries", fmtSec(r.Legacy.RegisterCountMs/1000), r.Legacy.RegisterCountOps)
		}), "count of named records, insert"},
		{model, "model of 1.x: server pass (EC2 calls, writes)", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%s (%d, %d)", fmtSec(r.Legacy.ServerPassMs/1000), r.Legacy.ServerEC2Calls, r.Legacy.ServerPassWrites)
		}), "every 60 s"},
		{model, "model of 1.x: updater read per node per poll", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%s, %s", fmtSec(r.Legacy.UpdaterReadMs/1000), fmtBytes(r.Legacy.UpdaterBytes))
		}), "every 60 s, changed or not"},
	}
}

// plannerRows: naming.Plan alone.
func plannerRows(ix resultsByN) []row {
	planS := "Planner (naming.Plan, one service; CPU time, wall in brackets)"
	return []row{
		{planS, "idle pass: CPU (wall), allocs", cell(ix.plan, func(r plannerResult) string {
			return fmt.Sprintf("%s (%s), %d", fmtSec(r.SteadyCPUMs/1000), fmtSec(r.SteadyMs/1000), r.SteadyAllocs)
		}), "target 50,000 < 100 ms"},
		{planS, "churn pass: CPU (wall), allocs", cell(ix.plan, func(r plannerResult) string {
			return fmt.Sprintf("%s (%s), %d", fmtSec(r.ChurnCPUMs/1000), fmtSec(r.ChurnMs/1000), r.ChurnAllocs)
		}), "10% dead, 10% new, 20% gaps"},
		{planS, "churn pass: CPU per instance", cell(ix.plan, func(r plannerResult) string {
			return fmt.Sprintf("%.0f ns", r.NsPerInst)
		}), "flat = linear in N"},
	}
}

// agentRows: what an agent costs: bytes, CPU, memory.
func agentRows(cfg config, res results, ix resultsByN) []row {
	agentS := "Agent"
	return []row{
		{agentS, "bytes per change per agent: delta", cell(ix.scen, func(r scenarioResult) string { return fmtBytes(int64(r.DeltaBytesPerAgent)) }), "target O(changed records)"},
		{agentS, "full snapshot (first sync / 1.x every poll)", cell(ix.scen, func(r scenarioResult) string { return fmtBytes(r.FullSnapshotBytes) }), ""},
		{agentS, "idle: bytes per agent per minute", cell(ix.scen, func(r scenarioResult) string { return fmtBytes(int64(r.IdleBytesPerMinute)) }), fmt.Sprintf("%v long-polls time out", cfg.feedWait)},
		{agentS, "render + write after a change (p50 / p99)", cell(ix.scen, func(r scenarioResult) string {
			return fmt.Sprintf("%s / %s", fmtSec(r.AgentRender.P50), fmtSec(r.AgentRender.P99))
		}), fmt.Sprintf("10,000-name bench: %.1f ms, %d allocs", res.Render.Ms, res.Render.Allocs)},
		{agentS, "agent process: CPU idle / per change", cell(ix.scen, func(r scenarioResult) string {
			idle := fmt.Sprintf("%.0f ms/min", r.AgentProcIdleCPUms)
			if r.AgentProcIdleCPUms == 0 && r.IdleWindowS > 0 {
				idle = fmt.Sprintf("< %.0f ms/min", 10/(r.IdleWindowS/60)) // one 10 ms clock tick in the window
			}
			return fmt.Sprintf("%s / %.1f ms", idle, r.AgentProcChurnCPUms)
		}), "a real agent in its own process"},
		{agentS, "all in-process: CPU per ledger change", cell(ix.scen, func(r scenarioResult) string { return fmtSec(r.ChurnCPUPerChangeMs / 1000) }), "controller, store, feed, claims, every agent"},
		{agentS, "agent process: peak RSS", cell(ix.scen, func(r scenarioResult) string { return fmtBytes(r.AgentProcPeakRSS) }), "VmHWM"},
		{agentS, "controller process peak RSS (+ store, feed)", cell(ix.scen, func(r scenarioResult) string { return fmtBytes(r.ControllerPeakRSS) }), "VmHWM before agents start; store in-process"},
		{agentS, "whole scenario process peak RSS", cell(ix.scen, func(r scenarioResult) string { return fmtBytes(r.ScenarioPeakRSS) }), "+ in-process agents, fake EC2"},
	}
}

// bootstrapRows: the controller naming a whole fleet on an empty ledger.
func bootstrapRows(ix resultsByN) []row {
	bootS := "Bootstrap (controller alone, empty ledger)"
	return []row{
		{bootS, "every instance named (passes, writes)", cell(ix.boot, func(r bootstrapResult) string {
			return fmt.Sprintf("%s (%d, %s)", fmtSec(r.Seconds), r.Passes, commas(r.Writes))
		}), "≤ 60 s at 10,000"},
		{bootS, "CPU / peak RSS", cell(ix.boot, func(r bootstrapResult) string {
			return fmt.Sprintf("%s / %s", fmtSec(r.CPUms/1000), fmtBytes(r.PeakRSS))
		}), "controller + in-process store"},
	}
}

// scaleRows: the controller and its feed alone at scale.
func scaleRows(ix resultsByN) []row {
	scaleS := "Controller at scale (bulk names, no agents; store and EC2 in another process)"
	return []row{
		{scaleS, "first pass (whole read) / feed's first sync", cell(ix.scale, func(r scaleResult) string {
			return fmt.Sprintf("%s / %s", fmtSec(r.FirstPassS), fmtSec(r.FeedSyncS))
		}), "names inserted in bulk"},
		{scaleS, "idle pass: CPU / wall", cell(ix.scale, func(r scaleResult) string {
			return fmt.Sprintf("%s / %s", fmtSec(r.IdlePassCPU/1000), fmtSec(r.IdlePassS))
		}), "controller + feed alone; target ≤ 150 ms at 10,000; wall includes the EC2 call budget"},
		{scaleS, "CPU per change above an idle pass (ratio to 1,000)", cell(ix.scale, func(r scaleResult) string {
			if r.ChurnCPUPerChangeMs == 0 {
				// Rounds are clamped at zero: the binds cost less than
				// the idle pass varies by (a GC cycle more or less).
				return "below the idle pass's noise"
			}
			out := fmt.Sprintf("%.2f ms", r.ChurnCPUPerChangeMs)
			if base, ok := ix.scale[1000]; ok && r.N != 1000 && base.ChurnCPUPerChangeMs > 0 {
				out += fmt.Sprintf(" (×%.1f)", r.ChurnCPUPerChangeMs/base.ChurnCPUPerChangeMs)
			}
			return out
		}), fmt.Sprintf("median of %d rounds of %d launches bound by one pass, pass + feed, minus an idle pass; target 10,000 / 1,000 ≤ 2", churnRounds, churnBatch)},
		{scaleS, "controller process RSS: peak / after idle passes (anon + file)", cell(ix.scale, func(r scaleResult) string {
			out := fmt.Sprintf("%s / %s", fmtBytes(r.PeakRSS), fmtBytes(r.RSS))
			if r.RSSAnon > 0 {
				out += fmt.Sprintf(" (%s + %s)", fmtBytes(r.RSSAnon), fmtBytes(r.RSSFile))
			}
			return out
		}), "< 200 MB at 50,000; controller + feed alone; file: the binary's pages"},
		{scaleS, "GOMEMLIMIT of the controller process", cell(ix.scale, func(r scaleResult) string {
			if r.GoMemLimit == 0 {
				return "none"
			}
			return fmtBytes(r.GoMemLimit)
		}), "from the bench's environment; the chart sets 90 % of the container limit"},
	}
}

// writeMarkdown prints an aligned Markdown table; a one-cell line is a
// section heading spanning the row.
func writeMarkdown(out io.Writer, header []string, lines [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len([]rune(h))
	}
	for _, l := range lines {
		if len(l) == 1 {
			continue
		}
		for i, c := range l {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	pr := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i := range header {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			b.WriteString(" " + c + strings.Repeat(" ", max(0, width[i]-len([]rune(c)))) + " |")
		}
		fmt.Fprintln(out, b.String())
	}
	pr(header)
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = strings.Repeat("-", width[i])
	}
	pr(seps)
	for _, l := range lines {
		pr(l)
	}
}

func fmtDist(d dist) string {
	if d.N == 0 {
		return "—"
	}
	return fmt.Sprintf("%s / %s / %s", fmtSec(d.P50), fmtSec(d.P99), fmtSec(d.Max))
}

func fmtSec(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.0f s", s)
	case d >= time.Second:
		return fmt.Sprintf("%.1f s", s)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", s*1000)
	default:
		return fmt.Sprintf("%.1f ms", s*1000)
	}
}

func fmtBytes(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

func commas(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
