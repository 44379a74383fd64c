// Command attack replays a curious researcher's attacks on the counts of
// federated search against a hub and its nodes started in this process
// (internal/attack), and prints how many counts hidden under the nodes'
// floor each attack recovers exactly, the searches it spent, and the
// accuracy of ordinary counts. It is a measuring tool, not part of the
// mosaic binary; bench/attack.sh runs it. See bench/attack/README.md for
// the attacks.
//
//	attack [-nodes 3] [-patients 36] [-follow-up 0.05] [-seeds 1] [-attacks all] [-repeats 20] [-accounts 3] [-targets 0]
//	       [-ages 30-90] [-combos] [-noise 0] [-floor 0] [-round 0] [-max-days 3650]
//	       [-workload 300] [-accuracy-patients 300] [-short]
//
// -noise, -floor and -round set the nodes' search_noise, search_floor
// and search_round (0 leaves the node's default). -seeds takes a comma
// list: each seed is a fresh federation, and a last table sums them.
// -accuracy-patients runs the ordinary workload on a federation of its
// own with that many patients per node (0: on the attacks' federation).
// -short is the plan of the package's test (fewer ages and estimates).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/attack"
	"github.com/mosaic-imaging/mosaic/internal/node"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("attack", flag.ExitOnError)
	nodes := fs.Int("nodes", 3, "nodes, each with one Tier 3 dataset")
	patients := fs.Int("patients", 36, "synthetic patients per node for the attacks")
	followUp := fs.Float64("follow-up", 0, "share of patients with a long follow-up of 10 to 15 more studies (0: the harness's default, 5%; negative: none)")
	seeds := fs.String("seeds", "1", "comma-separated cohort seeds: one federation each")
	attacks := fs.String("attacks", "all", "comma-separated attacks: "+strings.Join(attack.Names, ","))
	repeats := fs.Int("repeats", 0, "estimates averaged per cell by general differencing, rewrites and trackers (0: the plan's)")
	targets := fs.Int("targets", -1, "ages targeted by the threshold scan and three-set differencing, the first of -ages (-1: the plan's, 0: all)")
	accounts := fs.Int("accounts", 0, "accounts pooled by the several-accounts attack (0: the plan's)")
	ages := fs.String("ages", "", "ages swept, LO-HI (empty: the plan's)")
	combos := fs.Bool("combos", true, "add gender x diagnosis and gender x year groups to the ages (full plan only)")
	controls := fs.String("controls", "default", "the nodes' disclosure control: default (node.Config's defaults, then the flags below), or off (no floor, no noise, no overlap control, no budget: the harness must find every leak)")
	noise := fs.Float64("noise", -1, "the nodes' search_noise (negative: the node's default)")
	floor := fs.Int("floor", 0, "the nodes' search_floor (0: the node's default)")
	round := fs.Int("round", 0, "the nodes' search_round (0: the node's default)")
	overlap := fs.String("overlap", "", "the nodes' search_overlap: on or off (empty: the node's default)")
	daily := fs.Float64("daily-epsilon", 0, "the nodes' search_daily_epsilon (0: the node's default; negative: no cap)")
	total := fs.Float64("total-epsilon", 0, "the nodes' search_total_epsilon (0: the node's default; negative: no cap)")
	maxDays := fs.Int("max-days", 0, "days one attack may wait for daily budgets (0: the plan's)")
	workload := fs.Int("workload", -1, "ordinary queries for the accuracy (-1: the plan's, 0: none)")
	accPatients := fs.Int("accuracy-patients", 300, "patients per node of the accuracy federation (0: use the attacks' federation)")
	short := fs.Bool("short", false, "the short plan of the package's test")
	fs.Parse(args)

	p := attack.FullPlan()
	if *short {
		p = attack.ShortPlan()
	} else {
		p.Combos = *combos
	}
	if *attacks != "all" {
		p.Attacks = strings.Split(*attacks, ",")
	}
	if *repeats > 0 {
		p.Repeats = *repeats
	}
	if *accounts > 0 {
		p.Accounts = *accounts
	}
	if *targets >= 0 {
		p.Targets = *targets
	}
	if *maxDays > 0 {
		p.MaxDays = *maxDays
	}
	if *ages != "" {
		lo, hi, ok := strings.Cut(*ages, "-")
		var err1, err2 error
		p.AgeLo, err1 = strconv.Atoi(lo)
		p.AgeHi, err2 = strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil || p.AgeLo > p.AgeHi {
			return fmt.Errorf("-ages %q: want LO-HI", *ages)
		}
	}
	if *workload >= 0 {
		p.Workload = *workload
	}
	accWorkload := p.Workload
	if *accPatients > 0 {
		p.Workload = 0 // measured on a federation of its own
	}
	if *controls != "default" && *controls != "off" {
		return fmt.Errorf("-controls %q: want default or off", *controls)
	}
	if *overlap != "" && *overlap != "on" && *overlap != "off" {
		return fmt.Errorf("-overlap %q: want on or off", *overlap)
	}
	hook := func(c *node.Config) {
		if *controls == "off" {
			attack.NoControls(c)
		}
		if *noise >= 0 {
			c.SearchNoise = noise
		}
		if *floor > 0 {
			c.SearchFloor = *floor
		}
		if *round > 0 {
			c.SearchRound = *round
		}
		if *overlap != "" {
			on := *overlap == "on"
			c.SearchOverlap = &on
		}
		if *daily != 0 {
			c.SearchDailyEpsilon = *daily
		}
		if *total != 0 {
			c.SearchTotalEpsilon = *total
		}
	}
	var seedList []uint64
	for _, s := range strings.Split(*seeds, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("-seeds %q: %w", *seeds, err)
		}
		seedList = append(seedList, v)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("node settings: controls %s; search_noise %g, search_floor %d, search_round %d, search_overlap %q, search_daily_epsilon %g, search_total_epsilon %g (negative noise, 0 or empty: the node's default)\n\n",
		*controls, *noise, *floor, *round, *overlap, *daily, *total)
	var sum attack.Report
	t0 := time.Now()
	for _, seed := range seedList {
		f, err := attack.Start(ctx, attack.Setup{Nodes: *nodes, Patients: *patients, Seed: seed, FollowUp: *followUp, Node: hook})
		if err != nil {
			return err
		}
		p.Seed = seed
		rep, err := attack.Run(ctx, f, p)
		f.Close()
		if err != nil {
			return err
		}
		if *accPatients > 0 && accWorkload > 0 {
			af, err := attack.Start(ctx, attack.Setup{Nodes: *nodes, Patients: *accPatients, Seed: seed, FollowUp: *followUp, Node: hook})
			if err != nil {
				return err
			}
			t1 := time.Now()
			acc, err := attack.MeasureAccuracy(ctx, af, accWorkload, seed)
			rep.AccuracySetup = attack.Describe(af)
			af.Close()
			if err != nil {
				return err
			}
			rep.Accuracy = &acc
			rep.Took += time.Since(t1)
		}
		fmt.Printf("## seed %d\n\n", seed)
		if err := rep.Markdown(os.Stdout); err != nil {
			return err
		}
		fmt.Println()
		sum = add(sum, rep)
	}
	if len(seedList) > 1 {
		sum.Setup = fmt.Sprintf("sum over seeds %s", *seeds)
		sum.Took = time.Since(t0)
		fmt.Printf("## all seeds\n\n")
		return sum.Markdown(os.Stdout)
	}
	return nil
}

// add sums b into a: cells, recoveries and queries per attack; the
// accuracy's error weighted by answers.
func add(a, b attack.Report) attack.Report {
	if a.Results == nil {
		a.K = b.K
		a.Results = append([]attack.Result(nil), b.Results...)
		for i := range a.Results {
			a.Results[i].Note = ""
		}
	} else {
		for i, r := range b.Results {
			s := &a.Results[i]
			s.Cells += r.Cells
			s.Recovered += r.Recovered
			s.Blind += r.Blind
			s.Queries += r.Queries
			s.Days += r.Days
			s.Refusals += r.Refusals
		}
	}
	if b.Accuracy != nil {
		if a.Accuracy == nil {
			a.Accuracy = &attack.Accuracy{}
		}
		x, y := a.Accuracy, b.Accuracy
		if n := x.Answers + y.Answers; n > 0 {
			x.MAE = (x.MAE*float64(x.Answers) + y.MAE*float64(y.Answers)) / float64(n)
		}
		x.Queries += y.Queries
		x.Answers += y.Answers
		x.MaxErr = max(x.MaxErr, y.MaxErr)
		x.Suppressed += y.Suppressed
		x.Refused += y.Refused
	}
	return a
}
