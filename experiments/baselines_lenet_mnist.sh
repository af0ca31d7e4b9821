#!/usr/bin/env bash
# Every baseline of issue 15 on real MNIST with LeNet-300-100, on one accuracy-vs-weights-remaining
# figure: pruning at init (random, magnitude, SNIP, GraSP, SynFlow) with the Frankle et al. (2021)
# ablations (shuffle, reinit), IMP with weight rewinding (and its reinit control), LR rewinding and
# fine-tuning (Renda et al. 2020), and gradual magnitude pruning (Zhu & Gupta 2017).
#
# Scaled down for 2 CPU cores shared with other work (say so when quoting the numbers): every network
# trains 300 iterations at batch 60 (a third of an epoch; the paper trains 50,000), Adam 1.2e-3 with
# the rate cut 10x at 200it (so LR rewinding and fine-tuning differ), global pruning everywhere, IMP at
# 75% per level (5 levels: 25, 6.25, 1.6, 0.39, 0.098% remaining) instead of 20%, 1 replicate by
# default (REPLICATES=2 draws bands), controls for the data- and flow-based methods only. Measured:
# the script is ~70 trainings; it took 52 min on 2 cores at load average 12-25 (~45 s per training).
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$(dirname "$0")/.."
DATA=${LANDSCAPE_DATA:-../shared/data}
STORE=${STORE:-experiments-store}
REPLICATES=${REPLICATES:-1}
DENSITIES=${DENSITIES:-0.2,0.05,0.01,0.001}
L=.venv/bin/landscape
TRAIN=(--model lenet_300_100 --dataset mnist --data-dir "$DATA" --store "$STORE" --replicates "$REPLICATES"
       --optimizer adam --lr 1.2e-3 --schedule step --milestones 200it --gamma 0.1 --batch-size 60
       --steps 300it --eval-every 100it)

for method in synflow snip grasp; do
  $L prune --method "$method" --density "$DENSITIES" --controls shuffle,reinit "${TRAIN[@]}" --name "bl-mnist-$method"
done
for method in magnitude random; do
  $L prune --method "$method" --density "$DENSITIES" "${TRAIN[@]}" --name "bl-mnist-$method"
done
IMP=(--levels 5 --prune-fraction 0.75 --scope global --rewind 0)
$L imp "${IMP[@]}" --controls reinit "${TRAIN[@]}" --name bl-mnist-imp
$L imp "${IMP[@]}" --controls none --retrain lr-rewind "${TRAIN[@]}" --name bl-mnist-lr-rewind
$L imp "${IMP[@]}" --controls none --retrain finetune "${TRAIN[@]}" --name bl-mnist-finetune
for d in ${DENSITIES//,/ }; do
  $L gmp --final-density "$d" --start 25it --end 175it --every 25it "${TRAIN[@]}" --name "bl-mnist-gmp$d"
done
$L report bl-mnist-imp --store "$STORE" --out "$STORE/baselines-lenet-mnist.html"
