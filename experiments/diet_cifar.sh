#!/usr/bin/env bash
# Paul et al. (2022), "Lottery Tickets on a Data Diet", at a scale for a 2-core CPU: IMP whose
# tickets rewind to (a) θ0, (b) T steps of dense training on the full data (late rewinding),
# (c) T steps on an easy subset (lowest EL2N), (d) T steps on a random subset of the same size,
# and (e) T steps on a hard subset (highest EL2N) — all from the same θ0, all then trained on the
# full training set.
#
# Why this setting: late rewinding only matters where IMP at θ0 is unstable. VGG-11 at 1/8 width
# (146k weights, BatchNorm) on CIFAR-10 is: in experiments/lmc_cifar.sh its siblings spawned at
# k = 0 end 17% apart in test error, and at k = 25 iterations under 1%. So T = 100 iterations is
# past the onset on full data, and the question the paper asks is whether T steps on a small easy
# subset get there too. Recipe: SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, random
# crop and flip, STEPS iterations per IMP level (default 1000, 2.8 epochs; the paper trains 160
# epochs), global magnitude pruning of 20% per level for LEVELS levels (default 7: 21% of weights
# remain), REPLICATES replicates (default 2; replicate r of every variant starts from the same θ0).
# Subset: SIZE examples (default 4,500 = 10% of the 45,000-image training split), class-balanced;
# EL2N over 4 scoring runs at 200 iterations. Two chains run in parallel, one process per core.
# Everything is reused from the store on a rerun: REPLICATES=2 after REPLICATES=1 trains only the
# second replicate's runs. Measured on 2 shared cores: REPLICATES=1 took 42 min (about 16 min per
# variant per core, 4 min of it the EL2N scoring); the second replicate about 45 min more; the LMC
# stage about 10 min. `T=20it REPLICATES=1 bash experiments/diet_cifar.sh` is the shorter pre-training
# (below the full-data onset of stability) at one replicate.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$(dirname "$0")/.."
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg}
DATASET=${DATASET:-imagefolder:$CIFAR}
MODEL=${MODEL:-vgg11}
WIDTH=${WIDTH:-0.125}
STORE=${STORE:-experiments-store}
STEPS=${STEPS:-1000it}
EVAL=${EVAL:-250it}
T=${T:-100it}
SIZE=${SIZE:-4500}
LEVELS=${LEVELS:-7}
SCORE_AT=${SCORE_AT:-200it}
SCORE_RUNS=${SCORE_RUNS:-4}
REPLICATES=${REPLICATES:-2}
NAME=${NAME:-diet-$MODEL-$STEPS-T$T-r$REPLICATES}
L=.venv/bin/landscape
# --schedule constant: the VGG recipe's step milestones (80ep, 120ep) lie far past STEPS, so its
# learning rate never dropped here; it is now refused rather than silently ignored.
TRAIN=(--model "$MODEL" --width "$WIDTH" --dataset "$DATASET" --steps "$STEPS" --eval-every "$EVAL" --store "$STORE"
       --replicates "$REPLICATES" --schedule constant)
mkdir -p "$STORE"
PRUNE=(--levels "$LEVELS" --scope global --prune-fraction 0.2 --controls none)
DIET=(--size "$SIZE" --pretrain-steps "$T" --then-imp --at "$SCORE_AT" --runs "$SCORE_RUNS")
started=$(date +%s)
log() { echo "[$(( $(date +%s) - started )) s] $*"; }

chain_one() {
  $L imp "${TRAIN[@]}" "${PRUNE[@]}" --rewind 0 --name "$NAME-theta0"
  log "(a) rewind to θ0 done"
  $L diet "${TRAIN[@]}" "${PRUNE[@]}" "${DIET[@]}" --subset easy --name "$NAME-easy"
  log "(c) easy subset done"
  $L diet "${TRAIN[@]}" "${PRUNE[@]}" "${DIET[@]}" --subset hard --name "$NAME-hard"
  log "(e) hard subset done"
}
chain_two() {
  $L imp "${TRAIN[@]}" "${PRUNE[@]}" --rewind "$T" --name "$NAME-full-T"
  log "(b) rewind to T on full data done"
  $L diet "${TRAIN[@]}" "${PRUNE[@]}" "${DIET[@]}" --subset random --name "$NAME-random"
  log "(d) random subset done"
}
chain_one > "$STORE/$NAME-chain1.log" 2>&1 &
one=$!
chain_two > "$STORE/$NAME-chain2.log" 2>&1 &
two=$!
wait $one; wait $two
cat "$STORE/$NAME-chain1.log" "$STORE/$NAME-chain2.log"
# Runs are named when first made, and a rerun under another NAME reuses them: take their IDs from
# what the commands printed (IMP runs in the order each chain ran them; diet runs likewise).
nth() { grep "$2" "$STORE/$NAME-chain$1.log" | sed -n "$3p" | cut -d' ' -f1; }
IMPS=" levels, rewind to "
theta0=$(nth 1 "$IMPS" 1); easy=$(nth 1 "$IMPS" 2); hard=$(nth 1 "$IMPS" 3)
full=$(nth 2 "$IMPS" 1); random=$(nth 2 "$IMPS" 2)
DIETS=" subset of "
diets=("$(nth 1 "$DIETS" 1)" "$(nth 2 "$DIETS" 1)" "$(nth 1 "$DIETS" 2)")

# Linear mode connectivity at each variant's rewind point (LMC=0 to skip): two siblings spawned
# from the dense network at the rewind step, trained to the end with different data order and
# augmentation, then interpolated with each training example's loss barrier measured on a seeded
# 1,000-image sample (an example counts as linearly connected when its loss never rises above the
# straight line between its endpoint losses). The report draws the connected fraction per variant.
if [ "${LMC:-1}" = 1 ]; then
  lmc_at() {  # IMP run ID, rewind step: siblings of its dense network (replicate 0) there
    local sibs
    sibs=$($L siblings --from "$1@0:$2" -k 2 --store "$STORE" | grep -o '^[0-9a-f]\{12\}' | head -2 | tr '\n' ' ')
    set -- $sibs
    $L lmc --run-a "$1" --run-b "$2" --per-example --train-subset 1000 --points 30 --batch-size 500 \
      --bn-batches 2 --store "$STORE"
  }
  ( lmc_at "$theta0" 0; lmc_at "$easy" "$T"; lmc_at "$hard" "$T" ) > "$STORE/$NAME-lmc1.log" 2>&1 &
  one=$!
  ( lmc_at "$full" "$T"; lmc_at "$random" "$T" ) > "$STORE/$NAME-lmc2.log" 2>&1 &
  two=$!
  wait $one; wait $two
  cat "$STORE/$NAME-lmc1.log" "$STORE/$NAME-lmc2.log"
  log "LMC at the rewind points done"
fi

$L report "${diets[@]}" "$theta0" "$full" --store "$STORE" --out "$STORE/$NAME.html"
log "all done"
