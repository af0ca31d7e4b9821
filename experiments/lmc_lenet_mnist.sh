#!/usr/bin/env bash
# Frankle et al. (2020), LeNet-300-100 on MNIST: two copies trained from initialisation with
# different SGD noise (data order) end in one linearly connected minimum: error barrier < 2%.
#
# 1. a parent run, kept at step 0 (its initialisation) and at the end;
# 2. two siblings spawned at step 0: same θ0, same schedule, different data-order seeds;
# 3. `landscape lmc` between them: 30 points, the full MNIST test set and the full training split
#    (55,000 images), with the per-example barriers (Paul et al. 2022);
# 4. a report with the curves, the barrier table and the per-example histogram.
# Protocol: the LeNet recipe (Adam 1.2e-3, batch 60, 5,000 validation images held out of 60,000),
# scaled down from the paper's 24k iterations to STEPS (default 4 epochs = 3,664 iterations):
# LeNet reaches ~98% test accuracy by then, and stability at step 0 does not need the rest.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # LeNet is too small to gain from a second thread
cd "$(dirname "$0")/.."
DATA=${LANDSCAPE_DATA:-../shared/data}
STORE=${STORE:-experiments-store}
STEPS=${STEPS:-4ep}
L=.venv/bin/landscape
COMMON=(--data-dir "$DATA" --store "$STORE")
started=$(date +%s)

$L train --model lenet_300_100 --dataset mnist --steps "$STEPS" --eval-every 1ep --checkpoint-at 0,end \
  --name "lmc-lenet-parent-$STEPS" "${COMMON[@]}"
$L siblings --from "lmc-lenet-parent-$STEPS:0" -k 2 --name "lmc-lenet-sib0-$STEPS" "${COMMON[@]}"
trained=$(date +%s)
$L lmc --run-a "lmc-lenet-sib0-$STEPS-r0" --run-b "lmc-lenet-sib0-$STEPS-r1" --points 30 --per-example \
  --name "lmc-lenet-mnist-k0-$STEPS" "${COMMON[@]}"
$L report "lmc-lenet-mnist-k0-$STEPS" --store "$STORE" --out "$STORE/lmc-lenet-mnist.html"
done_=$(date +%s)
echo "time: training (parent + 2 siblings) $((trained - started)) s, interpolation and report $((done_ - trained)) s, total $((done_ - started)) s"
