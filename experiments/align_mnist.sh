#!/usr/bin/env bash
# Same basin or same region? Permutation alignment on real data (Ainsworth et al. 2023; Maene et al.).
#
# 1. MNIST, dense: two LeNet-300-100 and two 3x512 MLPs (Ainsworth et al.'s MNIST MLP) trained from
#    different seeds; `landscape lmc --align weights` and `--align activations` print the test and
#    train loss (and error) barrier before and after alignment, and the distances; and after weight
#    matching with REPAIR (Jordan et al. 2022) along the path.
# 2. MNIST, tickets: IMP on LeNet-300-100 with two replicates (different seeds, so different masks);
#    the replicates' tickets at ~20% and ~5% of the weights (levels 1 and 2 at 78% per level) aligned
#    to each other (their masks are permuted along: mask Jaccard before/after), and each ticket
#    against its own dense network.
# 3. CIFAR-10: two VGG-11 at width 1/8 from different seeds; aligned by weights, the barrier with the
#    endpoints' BatchNorm statistics interpolated (--no-bn-recompute) and with them recomputed at each
#    α, which is REPAIR's correction for BatchNorm networks (--repair).
# A table ("same basin or same region") is printed at the end from the stored runs.
# `align_mnist.sh dense|tickets|vgg|table` runs one part (the three first are independent, so they
# can run side by side); no argument runs them all in order.
#
# Scaled down for a 2-core machine shared with other work: TRAIN (default 3 epochs) per dense run
# instead of tens, IMP at 78% per level for 2 levels of IMP_STEPS (default 2 epochs) each, VGG
# for VGG_STEPS (default 1 epoch), LMC on 15 points over the test set and 10,000 training examples.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$(dirname "$0")/.."
DATA=${LANDSCAPE_DATA:-../shared/data}
STORE=${STORE:-experiments-store}
TRAIN=${TRAIN:-3ep}
IMP_STEPS=${IMP_STEPS:-2ep}
VGG_STEPS=${VGG_STEPS:-1ep}
L=.venv/bin/landscape
COMMON=(--data-dir "$DATA" --store "$STORE")
LMC=(--points 15 --train-subset 10000 "${COMMON[@]}")
ADAM=(--optimizer adam --lr 1.2e-3 --batch-size 60 --eval-every 1ep)
t() { date +%s; }
PART=${1:-all}

dense() {
# 1. dense MNIST networks from different seeds
started=$(t)
for model in lenet_300_100 mlp_3x512; do
  for seed in 0 1; do
    $L train --model $model --dataset mnist --steps "$TRAIN" --seed $seed "${ADAM[@]}" \
      --name "align-$model-s$seed-$TRAIN" "${COMMON[@]}" > /dev/null
  done
done
trained=$(t)
for model in lenet_300_100 mlp_3x512; do
  for method in weights activations; do
    $L lmc --run-a "align-$model-s0-$TRAIN" --run-b "align-$model-s1-$TRAIN" --align $method \
      --name "cmp-$model-seeds-$method" "${LMC[@]}"
  done
  # REPAIR along the weight-matched path (these networks have no BatchNorm)
  $L lmc --run-a "align-$model-s0-$TRAIN" --run-b "align-$model-s1-$TRAIN" --align weights --repair \
    --name "cmp-$model-seeds-weights-repair" "${LMC[@]}"
done
echo "time: dense training $((trained - started)) s, alignment and LMC $(($(t) - trained)) s"
}

tickets() {
dense=$(t)
# 2. IMP tickets, two replicates: level 1 keeps 22%, level 2 4.8% of the hidden-layer weights
#    (few, steep levels to fit the shared machine; Frankle & Carbin prune 20% per level)
$L imp --model lenet_300_100 --dataset mnist --levels 2 --prune-fraction 0.78 --output-fraction 0.39 \
  --rewind 0 --steps "$IMP_STEPS" "${ADAM[@]}" --controls none --replicates 2 \
  --name "align-imp-$IMP_STEPS" "${COMMON[@]}" > /dev/null
imp_trained=$(t)
IMP="align-imp-$IMP_STEPS"
for level in 1 2; do
  for method in weights activations; do
    $L lmc --run-a "$IMP@$level" --run-b "$IMP@$level/r1" --align $method \
      --name "cmp-tickets-L$level-replicates-$method" "${LMC[@]}"
    $L lmc --run-a "$IMP@0" --run-b "$IMP@$level" --align $method \
      --name "cmp-tickets-L$level-dense-$method" "${LMC[@]}"
  done
done
tickets=$(t)
echo "time: IMP $((imp_trained - dense)) s, ticket alignment and LMC $((tickets - imp_trained)) s"
}

vgg() {
tickets=$(t)
# 3. CIFAR-10 VGG-11 at width 1/8, with and without the BatchNorm correction
CIFAR=(--dataset "imagefolder:$DATA/cifar10-jpeg")
for seed in 0 1; do
  $L train --model vgg11 "${CIFAR[@]}" --width 0.125 --steps "$VGG_STEPS" --seed $seed --eval-every 1ep \
    --name "align-vgg11-w8-s$seed-$VGG_STEPS" "${COMMON[@]}" > /dev/null
done
vgg_trained=$(t)
VLMC=(--points 11 --train-subset 5000 "${COMMON[@]}")
$L lmc --run-a "align-vgg11-w8-s0-$VGG_STEPS" --run-b "align-vgg11-w8-s1-$VGG_STEPS" --align weights \
  --no-bn-recompute --name "cmp-vgg11-w8-weights-interpolated-bn" "${VLMC[@]}"
$L lmc --run-a "align-vgg11-w8-s0-$VGG_STEPS" --run-b "align-vgg11-w8-s1-$VGG_STEPS" --align weights \
  --repair --name "cmp-vgg11-w8-weights-repair" "${VLMC[@]}"
echo "time: VGG training $((vgg_trained - tickets)) s, VGG alignment and LMC $(($(t) - vgg_trained)) s"
}

table() {
.venv/bin/python experiments/align_table.py --store "$STORE"
$L report cmp-lenet_300_100-seeds-weights cmp-tickets-L1-replicates-weights --store "$STORE" \
  --out "$STORE/align-mnist.html"
}

case "$PART" in
  dense|tickets|vgg|table) "$PART" ;;
  all) dense; tickets; vgg; table ;;
  *) echo "usage: $0 [dense|tickets|vgg|table]" >&2; exit 2 ;;
esac
