#!/usr/bin/env bash
# Frankle et al. (2020), instability analysis on CIFAR-10 at a scale for a 2-core CPU: siblings
# spawned at initialisation end in different basins (large error barrier between them); siblings
# spawned a little later in training end in one linearly connected basin. The paper finds VGG-16
# and ResNet-20 unstable at k = 0 and stable after a few thousand iterations (ResNet-20: ~2,000).
#
# Reduced: VGG-11 at 1/8 width (BatchNorm, 146k weights), the CIFAR recipe (SGD, lr 0.1, momentum
# 0.9, weight decay 1e-4, batch 128, random crop and flip), STEPS iterations in all (default 800,
# 2.3 epochs; test accuracy ~55-60%) instead of 63k. Siblings: 2 per step k in AT, trained to
# the end; each pair interpolated at 30 points on the full test set (10,000 images) and on a seeded
# 1,000-image sample of the training set, BatchNorm statistics recomputed at each α over 1,000
# training images. Then the same steps are searched for the onset of stability by bisection, which
# reuses the siblings and interpolations already stored.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # small convolutions: one thread per process is faster on a shared CPU
cd "$(dirname "$0")/.."
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg}
STORE=${STORE:-experiments-store}
STEPS=${STEPS:-800it}
AT=${AT:-0,25it,50it,100it,400it}
NAME=${NAME:-lmc-vgg11w8-cifar-$STEPS}
L=.venv/bin/landscape
MEASURE=(--points 30 --train-subset 1000 --batch-size 500 --bn-batches 2)
started=$(date +%s)

# --schedule constant: the VGG recipe's milestones (80ep, 120ep) lie past STEPS (refused since issue 9).
$L train --model vgg11 --width 0.125 --dataset "imagefolder:$CIFAR" --steps "$STEPS" --eval-every "$STEPS" \
  --schedule constant --checkpoint-at "$AT,end" --name "$NAME" --store "$STORE"
parent=$(date +%s)
$L instability --run "$NAME" --at "$AT" --siblings 2 "${MEASURE[@]}" --name "$NAME-instability" --store "$STORE"
scan=$(date +%s)
$L instability --run "$NAME" --at "$AT" --siblings 2 "${MEASURE[@]}" --find-onset --threshold 0.02 \
  --name "$NAME-onset" --store "$STORE"
$L report "$NAME-instability" "$NAME-onset" --store "$STORE" --out "$STORE/lmc-cifar.html"
done_=$(date +%s)
echo "time: parent $((parent - started)) s, siblings and interpolations $((scan - parent)) s, bisection and report $((done_ - scan)) s, total $((done_ - started)) s"
