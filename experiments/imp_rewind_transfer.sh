#!/usr/bin/env bash
# Late rewinding and ticket transfer, each against its controls, at a scale for a 2-core CPU.
#
# 1. Late rewinding (Frankle et al. 2020): LeNet-300-100 on MNIST, IMP as in imp_lenet_mnist.sh
#    but rewinding the survivors to iteration 1,000 of the dense run instead of θ0; 8 levels
#    (16.8% of the hidden weights remaining), 6,000 iterations per level, 1 replicate.
# 2. Transfer (Morcos et al. 2019): the tickets of run 1 (levels 1..8, found with Adam on MNIST)
#    trained on CIFAR-10 in grey at 28×28 (the images are adapted to the ticket's input: channel
#    mean, antialiased resize) with Adam, the same rewind point, against the reinit and
#    random-pruning controls and a dense CIFAR-10 baseline (level 0).
# The report overlays both runs and the θ0-rewinding run of imp_lenet_mnist.sh when it exists.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$(dirname "$0")/.."
DATA=${LANDSCAPE_DATA:-../shared/data}
STORE=${STORE:-experiments-store}
COMMON=(--model lenet_300_100 --data-dir "$DATA" --store "$STORE" --levels 8 --prune-fraction 0.2
        --output-fraction 0.1 --optimizer adam --lr 1.2e-3 --batch-size 60 --steps 6000it --eval-every 500it
        --controls reinit,random-prune)
.venv/bin/landscape imp "${COMMON[@]}" --dataset mnist --rewind 1000it --name late-rewind-lenet-mnist
.venv/bin/landscape imp "${COMMON[@]}" --dataset "imagefolder:$DATA/cifar10-jpeg" --augment none \
  --ticket-from late-rewind-lenet-mnist@8 --name transfer-lenet-mnist-to-cifar10
# The fine-tuned transfer baseline (reviewer 2 of Morcos et al.): the same tickets' trained, pruned
# weights instead of their rewound ones, fine-tuned on CIFAR-10 with the same schedule.
.venv/bin/landscape imp "${COMMON[@]}" --dataset "imagefolder:$DATA/cifar10-jpeg" --augment none \
  --ticket-from late-rewind-lenet-mnist@8 --transfer-init trained --name transfer-trained-lenet-mnist-to-cifar10
RUNS=(late-rewind-lenet-mnist transfer-lenet-mnist-to-cifar10 transfer-trained-lenet-mnist-to-cifar10)
.venv/bin/landscape show fc-lenet-mnist --store "$STORE" >/dev/null 2>&1 && RUNS+=(fc-lenet-mnist)
.venv/bin/landscape report "${RUNS[@]}" --store "$STORE" --out "$STORE/imp-rewind-transfer.html"
