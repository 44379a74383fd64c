#!/usr/bin/env bash
# A ready example of federated analysis on `mosaic demo`: the demo's
# researcher asks for process access to the two Tier 3 datasets (north's
# and south's, each with a research table "clinical"), the hub's admin and
# the two representatives approve, and the researcher fits a linear and a
# logistic model over both nodes with secure aggregation. No row leaves a
# node; the hub sees only sums.
#
#   mosaic demo &                        # wait for "ready"
#   examples/processing-demo.sh [DEMO_DIR] [MOSAIC]
#
# Needs curl and jq. MOSAIC is the mosaic binary (default: `go run
# ./cmd/mosaic` from the repository).
set -euo pipefail
D=${1:-mosaic-demo}/demo.json
if [ $# -ge 2 ]; then MOSAIC=("$2"); else MOSAIC=(go run ./cmd/mosaic); fi
H=$(jq -r .hub_url "$D"); R=$(jq -r .researcher_token "$D"); A=$(jq -r .admin_token "$D")

# The Tier 3 datasets: those whose catalogue entry lists research tables.
mapfile -t T3 < <(curl -sf "$H/api/v1/datasets" | jq -r '.datasets[] | select(.tables != null and (.tables | length) > 0) | "\(.node) \(.id)"')
[ ${#T3[@]} -gt 0 ] || { echo "no Tier 3 dataset with research tables in the catalogue" >&2; exit 1; }
DATASETS=$(printf '%s\n' "${T3[@]}" | jq -R 'split(" ") | {node: .[0], dataset: .[1]}' | jq -s .)

# 1. The request for process access, submitted and approved.
ID=$(jq -n --argjson ds "$DATASETS" '{title: "Response to treatment", description: "Federated regression of response and progression-free survival on age, sex and markers",
  duo: ["DUO:0000006"], query: {operand: "AND", children: []}, datasets: $ds, operations: ["process"], days: 30}' |
  curl -sf -H "Authorization: Bearer $R" --data-binary @- "$H/api/v1/access-requests" | jq -r .id)
curl -sf -X POST -H "Authorization: Bearer $R" "$H/api/v1/access-requests/$ID/submit" >/dev/null
curl -sf -H "Authorization: Bearer $A" -d '{"decision":"approve"}' "$H/api/v1/access-requests/$ID/review" >/dev/null
for nd in "${T3[@]}"; do
	set -- $nd
	REP=$(jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .representative_token' "$D")
	curl -sf -H "Authorization: Bearer $REP" -d '{"decision":"approve"}' \
		"$H/api/v1/access-requests/$ID/datasets/$1/$2/decision" >/dev/null
done
echo "access request $ID: $(curl -sf -H "Authorization: Bearer $R" "$H/api/v1/access-requests/$ID" | jq -r '[.permits[] | "\(.node)/\(.dataset)"] | join(", ")')"

# 2. The models, fitted across the nodes. Both use the same rows (those
# with hb): a second answer over rows that differ from an earlier one's
# by 1 to floor-1 rows (say, a model adding crp, which is missing for a
# few patients) is refused by the nodes' overlap control, as it would
# tell those rows apart.
"${MOSAIC[@]}" analyze lm --hub "$H" --token "$R" --request "$ID" --table clinical \
	--formula 'pfs_months ~ age + sex + hb'
"${MOSAIC[@]}" analyze glm --hub "$H" --token "$R" --request "$ID" --table clinical \
	--family binomial --formula 'response ~ age + sex + hb'
