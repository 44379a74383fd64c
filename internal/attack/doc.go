// Package attack is a harness that replays, against a real hub and real
// nodes in one process, the attacks a curious researcher with an ordinary
// API token would try in order to learn counts under the nodes' floor or
// attributes of one patient, and scores them against the nodes' raw
// counts. bench/attack runs it in full; its test runs a short version.
//
// # The federation
//
// Start builds a hub (its embedded NATS server on a free port, its HTTP
// API on 127.0.0.1 on a free port, its daily query limit raised to
// HubQueriesPerDay so that the nodes' own controls are what is measured)
// and Setup.Nodes nodes (default 3), each enrolled and linked as in
// production, each with one Tier 3 dataset of Setup.Patients synthetic
// patients (default 36, as `mosaic demo`) written into its SQLite index by
// internal/cohort: ages at diagnosis 30 to 90, both sexes, six cancer
// types, diagnoses in 2015 to 2024, 1 to 3 imaging studies each and, for
// Setup.FollowUp of them (default 5%), a long follow-up of 10 to 15 more
// studies (cohort.Generator.LongFollowUp), deterministic from Setup.Seed (and so
// are the nodes' site keys, which key their noise: the same seed gives
// the same answers run after run). Every
// node reads one fake Clock for its privacy budget's days. Setup.Node is
// applied to every node's configuration before it opens: the disclosure
// control under test.
//
//	f, err := attack.Start(ctx, attack.Setup{Seed: 1, Node: attack.NoControls}) // nil: the defaults
//	defer f.Close()
//	rep, err := attack.Run(ctx, f, attack.ShortPlan())
//	rep.Markdown(os.Stdout)
//
// # The attacker
//
// Each attack runs with researcher accounts of its own (one, or
// Plan.Accounts for the several-accounts attack), created on the hub with
// the researcher role and an API token, and POSTs bare Lens ASTs to
// /api/v1/search with the token as a bearer. It reads each dataset's
// subjects_count. A count of 0 is what a node reports for a true count
// under its floor (or for no match): the attacker takes it as "under the
// floor" and never differences it. When a dataset answers "refused":
// "budget-day", the attacker tries its next account there, and when every
// account is refused for the day it waits a day (moves the clock on 24
// hours) and asks again; "budget-total" (or any other refusal) retires
// that account at that dataset, and the dataset is given up when no
// account is left or when the attack has waited Plan.MaxDays. Every
// dataset answers every search, so the attacker keeps any dataset's
// answer from any search it sends. Queries spent are the searches sent,
// refused ones included.
//
// # Scoring
//
// A cell is a small group at one node's dataset. The hidden cells are
// those whose true count, read in-process with index.FederatedCounts
// (never through the hub), is 1 to K-1, where K is the highest floor the
// nodes report and at least 10 (so a run with the floor turned off scores
// the same cells); cells of 0 or K and more are never scored. A cell is
// recovered exactly when the attacker's final estimate, rounded, equals
// the true count; a cell without an estimate (every answer it needed
// suppressed or refused) is not recovered. The blind guess is the share
// of hidden cells holding the commonest hidden count (always guessing
// it).
//
// # The attacks
//
// The small groups A of attacks 1, 2, 5 and 6 are "age at diagnosis = a"
// for a in Plan.AgeLo..Plan.AgeHi (30 to 90 in the full plan: the
// catalogue's age range, coarsened to decades) and, with Plan.Combos,
// gender x diagnosis (6 cancer types) and gender x year of diagnosis (10
// years). "All" is an OR without children, what Lens sends with no
// criterion.
//
//  1. Complement differencing: count(all) once, then count(NOT A) for each
//     group; estimate count(all) - count(NOT A). 1 + groups queries.
//  2. General differencing: for each group A and j < Plan.Repeats, a large
//     set B_j = C_j AND NOT A, where C_j runs over gender, prefix and
//     suffix ranges of year (2016..2023) and age (55..75), modality CT or
//     MR, pairs of diagnoses and NOT a diagnosis, then over equivalent
//     rewrites of these (see 5); estimate the mean of count(A OR B_j) -
//     count(B_j) over the pairs with neither answer suppressed. 2 x
//     repeats queries per group.
//  3. Histogram reconstruction: per node the count of every age a in
//     AgeLo..AgeHi. It asks the known ages (age >= 0), every prefix
//     P(x) = count(age <= x) and every suffix S(x+1) = count(age >= x+1)
//     for x in AgeLo-1..AgeHi; P(x) is estimated by the prefix answer
//     and by known - S(x+1), averaged when both are answered, whichever
//     is when only one is (P(AgeLo-1) = 0 when both are suppressed);
//     h(a) = P(a) - P(a-1), averaged with count(all) - count(NOT(age =
//     a)) when that is answered. 2 + 2 x (ages + 1) + ages queries.
//  4. Narrowing to one patient: complement differencing over the ages
//     finds the cells where an estimate rounds to exactly 1 (the only
//     patient of that age at that node); for every such age it asks
//     NOT(age = a AND gender = g) for female and male and NOT(age = a
//     AND year = y) for 2015..2024, and takes the sex and the year with
//     the largest count(all) - count(...). Every count is the mean over
//     up to Plan.Repeats equivalent rewrites (those of 5 with distinct
//     canonical forms); until the attacker has seen two forms of a
//     question answered differently it asks two forms only and takes
//     agreeing answers as exact. The targets are the cells truly holding
//     one patient of an age; success is both sex and year right; the
//     blind guess is the dataset's commonest sex and commonest year.
//  5. Averaging equivalent rewrites: complement differencing where
//     count(all) and each count(NOT A) are the means over Plan.Repeats
//     logically equivalent forms (Rewrite): the query itself, wrapped in
//     an AND (the same canonical form), AND'ed with "female OR NOT
//     female", split into its female and not-female halves, AND'ed with
//     NOT(age = 1000+i) or NOT(year = 3000+i), AND'ed with "r OR NOT r"
//     for an age range r from -1-i to 200+i, and NOT(NOT X OR age =
//     1000+i). Answers of 0 are left out of the means. Repeats x (1 +
//     groups) queries.
//  6. Denning's tracker: count(C) = count(C OR T) + count(C OR NOT T) -
//     count(T OR NOT T) for each small group C, averaged over
//     Plan.Repeats trackers T: gender = female first, then the large
//     conditions of 2 (the other keys), then their rewrites. Repeats x
//     (1 + 2 x groups) queries.
//  7. Several accounts: the best of the averaging attacks 2, 5 and 6
//     (highest share, then fewest queries) run again with Plan.Accounts
//     accounts pooled and Plan.Repeats x Accounts estimates a cell. The
//     other attacks ask a fixed set of questions; asking them again from
//     another account gets the same answers.
//
// Attacks 8 to 10 target the ages "age at diagnosis = a" for the first
// Plan.Targets ages of AgeLo..AgeHi (all when 0; 4 in the short plan).
// Two answers are the same when every figure is (subjects, studies, age
// range, gender, modality, body parts: Same).
//
//  8. Overlap threshold scan: the overlap control as an oracle (an
//     answer identical to an earlier one means "within the overlap
//     distance of a set answered before"). For the i-th target age a, the
//     pads P_j are the first j cells of the list "age = x AND gender = g"
//     for x = a-1, a+1, a-2, a+2, ... out to a-7 and a+7 (ThresholdWindow), female then
//     male (28 cells); the two anchors are the patients outside that
//     window of ages in S OR (NOT S AND year <= 2016), and in NOT S OR (S
//     AND year >= 2023), with S the i-th of five splits (year <= 2019,
//     female, an even year, three of the diagnoses, an even age), so that
//     both pass the floor in a small cohort, lie far apart and differ from
//     one target to the next. Both anchors are disjoint from A and from
//     the pads. The scan with A asks B, then B OR A OR P_j for j = 0, 1,
//     ... and records the first j whose answer is not the same as B's;
//     the scan without A does the same with B' OR P_j from j = 1. Each
//     cell stops at its own j; a scan ends when every cell has stopped
//     (at most 2 + 29 + 28 searches a target). The estimate is the
//     difference of the two stopping points, in pad cells: the pads'
//     sizes cancel, and it is |A| exactly when the overlap distance is
//     fixed, each pad cell holds one patient and no other remembered set
//     is closer; empty pad cells count as steps too, and the sets of
//     earlier targets (and of other attacks) in a dataset's history can
//     stop a scan early.
//  9. Three-set differencing: for each target age a and t < Plan.Repeats,
//     paddings P1 = C_i AND NOT A and P2 = C_j AND NOT C_i AND NOT A, with
//     C_i, C_j drawn from (t, a) among the pairwise ANDs of the large
//     conditions of 2 (gender, year and age ranges, modality, diagnoses,
//     combined). The attacker asks P1 and P2 first and asks A OR P1 OR P2
//     only where both are answered and count(P1) + count(P2) <= count(all)
//     - floor - 2 (so that the union stays clear of the complement
//     control); answers identical to the answer for all are not used. The
//     estimate is the mean of count(A OR P1 OR P2) - count(P1) -
//     count(P2) over the tries kept. 1 + up to 3 x repeats queries per
//     target.
//  10. Three-set differencing on studies: for every age a of
//     AgeLo..AgeHi at which some cell truly holds one patient (the targets
//     of 4), the mean over Plan.Repeats tries of studies(A_f OR P1 OR P2)
//     - studies(P1) - studies(P2), A_f = age = a AND gender = female, P1
//     and P2 as in 9 but outside age a; the attacker says female when the
//     mean passes 0.5 (halfway between no patient and a patient of one
//     study). Success: the sex right; blind guess: the dataset's commonest
//     sex. Up to 3 x repeats queries per age.
//
// # Ordinary accuracy
//
// MeasureAccuracy sends Plan.Workload ordinary queries (an AND of 1 to 3
// criteria on different keys: gender, an age range, a diagnosis, a range
// of years, a modality, a body part; like bench/search's mix) with an
// account of its own and reports the mean absolute error of the answered
// counts of 20 and more against the true counts, the largest error, and
// how many non-empty groups were suppressed. bench/attack measures it on
// nodes of 300 patients, where many answers pass 20.
package attack
