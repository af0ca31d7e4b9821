#!/usr/bin/env bash
# Issue 15's baselines on CIFAR-10 with VGG-11 at 1/8 width (146k weights, BatchNorm), on one figure:
# pruning at init (random, magnitude, SNIP, GraSP at 5% and 0.1% of weights; SynFlow at 5%, 1% and
# 0.1% with its shuffle/reinit ablations; 0.1% is the layer-collapse check of Tanaka et al. 2020),
# IMP with weight rewinding, LR rewinding and fine-tuning (global, 80% per level, IMP_LEVELS=1: 20%),
# and GMP to 5%.
#
# Scaled down hard for 2 CPU cores shared with 7 other jobs (say so when quoting numbers): STEPS
# iterations per network (default 100 at batch 64, 1/7 of an epoch; Synaptic-Flow trains 160 epochs),
# SGD 0.1, momentum 0.9, weight decay 1e-4, the rate cut 10x at 3/4 of training, crop+flip, one
# replicate (REPLICATES=2 for bands). Accuracies are those of barely-trained networks (~30-40%):
# what this recipe shows reliably is which masks collapse, not the published accuracy gaps.
# Measured with the cores loaded ~12x: about 3 min per VGG training (evaluation included), ~25
# trainings; SynFlow's 100 scoring iterations took about a minute per density.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$(dirname "$0")/.."
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg}
STORE=${STORE:-experiments-store}
STEPS=${STEPS:-100}
REPLICATES=${REPLICATES:-1}
SYNFLOW_DENSITIES=${SYNFLOW_DENSITIES:-0.05,0.01,0.001}
DENSITIES=${DENSITIES:-0.05,0.001}
IMP_LEVELS=${IMP_LEVELS:-1}
L=.venv/bin/landscape
TRAIN=(--model vgg11 --width 0.125 --dataset "imagefolder:$CIFAR" --store "$STORE" --replicates "$REPLICATES"
       --optimizer sgd --lr 0.1 --momentum 0.9 --weight-decay 1e-4 --schedule step
       --milestones "$((STEPS * 3 / 4))it" --gamma 0.1 --batch-size "${BATCH:-64}" --steps "${STEPS}it"
       --eval-every "$((STEPS / 2))it")

$L prune --method synflow --density "$SYNFLOW_DENSITIES" --controls shuffle,reinit "${TRAIN[@]}" --name bl-cifar-synflow
for method in snip grasp magnitude random; do
  $L prune --method "$method" --density "$DENSITIES" "${TRAIN[@]}" --name "bl-cifar-$method"
done
IMP=(--levels "$IMP_LEVELS" --prune-fraction 0.8 --scope global --rewind 0 --controls none)
$L imp "${IMP[@]}" "${TRAIN[@]}" --name bl-cifar-imp   # the dense run is shared by the three IMP runs
$L imp "${IMP[@]}" --retrain lr-rewind "${TRAIN[@]}" --name bl-cifar-lr-rewind
$L imp "${IMP[@]}" --retrain finetune "${TRAIN[@]}" --name bl-cifar-finetune
$L gmp --final-density 0.05 --start "$((STEPS / 8))it" --end "$((STEPS * 5 / 8))it" --every "$((STEPS / 16))it" \
  "${TRAIN[@]}" --name bl-cifar-gmp
$L report bl-cifar-synflow --store "$STORE" --out "$STORE/baselines-cifar.html"
