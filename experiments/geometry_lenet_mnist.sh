#!/usr/bin/env bash
# Loss-landscape geometry around lottery tickets, at a scale for a 2-core CPU shared with other work.
#
# 1. A short LeNet-300-100 IMP run on real MNIST (Frankle & Carbin's protocol, shortened): layer-wise
#    magnitude pruning of 40% per level (output layer 20%) for 4 levels (down to 13% of the weights),
#    rewinding to θ0, Adam 1.2e-3, batch 60, 2,000 iterations per level (test accuracy ~97-98%
#    dense), the reinit control beside every ticket. Shorter than experiments/imp_lenet_mnist.sh
#    (20% per level, 12,000 iterations, 16 levels), which this recipe can be pointed at instead
#    (IMP=fc-lenet-mnist, LEVEL=...).
# 2. `landscape hessian` on the whole IMP run: top eigenvalue (Lanczos) and trace (Hutchinson,
#    50 Rademacher probes) of every level's ticket and reinit control, each restricted to its own
#    mask, on a seeded sample of 2,000 training examples; the IMP report gains "top eigenvalue and
#    trace vs weights remaining". Then per-layer spectra and the SLQ density of one ticket.
# 3. `landscape surface --plane`: the plane through θ0 under the level's mask (the ticket's step-0
#    checkpoint: it rewinds to θ0), the ticket, and the dense network, at level LEVEL; a 17x17 grid
#    on 1,000 test and 1,000 training examples.
# 4. A CIFAR-10 surface at reduced width with BatchNorm recomputation: VGG-11 at 1/8 width trained
#    for 300 iterations, random filter-normalised directions, a 9x9 grid on 1,000 test and 500
#    training images, BatchNorm statistics recomputed at every grid point over 1,000 training images.
# Measured on 2 cores shared with 7 other jobs (load average ~27): IMP 15 min, the two Hessian
# runs 14 min (about a minute per network), the plane 1 min, CIFAR training 6.5 min and its
# surface 10 min (one grid point per pass: see landscape.batched.chunking's CPU activation limit);
# on a free core each step is several times faster.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$(dirname "$0")/.."
DATA=${LANDSCAPE_DATA:-../shared/data}
CIFAR=${CIFAR:-$DATA/cifar10-jpeg}
STORE=${STORE:-experiments-store}
IMP=${IMP:-geo-lenet-mnist}
LEVEL=${LEVEL:-2}
L=.venv/bin/landscape
t() { date +%s; }
# Each measurement is referred to by the ID it prints first (its output also goes to stderr), not by
# its --name: an interrupted earlier attempt shares the name, and the report would refuse it as ambiguous.
id() { tee /dev/stderr | awk 'NR == 1 { print $1 }'; }
start=$(t)

if [ "$IMP" = geo-lenet-mnist ]; then
  $L imp --model lenet_300_100 --dataset mnist --data-dir "$DATA" --store "$STORE" \
    --levels 4 --prune-fraction 0.4 --output-fraction 0.2 --scope layerwise --rewind 0 \
    --optimizer adam --lr 1.2e-3 --batch-size 60 --steps 2000it --eval-every 1000it \
    --controls reinit --name "$IMP"
fi
trained=$(t)

H1=$($L hessian "$IMP" --roles ticket,reinit --examples 2000 --batch-size 2000 --steps 60 --probes 50 \
  --data-dir "$DATA" --store "$STORE" --name "$IMP-hessian" | id)
H2=$($L hessian "$IMP@$LEVEL" --per-layer --density --density-probes 4 --density-steps 40 --steps 60 --probes 30 \
  --top-k 3 --data-dir "$DATA" --store "$STORE" --name "$IMP-L$LEVEL-spectrum" | id)
curvature=$(t)

P=$($L surface --plane "$IMP@$LEVEL:0,$IMP@$LEVEL,$IMP@0" --grid 17x17 --examples 1000 --test-examples 1000 \
  --batch-size 1000 --data-dir "$DATA" --store "$STORE" --name "$IMP-L$LEVEL-plane" | id)
plane=$(t)

$L train --model vgg11 --width 0.125 --dataset "imagefolder:$CIFAR" --steps 300it --eval-every 300it \
  --checkpoint-at 0,100it,200it,end --name geo-vgg11w8-cifar --store "$STORE"
S=$($L surface geo-vgg11w8-cifar --grid 9x9 --span -1:1 --bn-recompute --bn-batches 2 --batch-size 500 \
  --examples 500 --test-examples 1000 --data-dir "$DATA" --store "$STORE" --name geo-vgg11w8-cifar-surface | id)
cifar=$(t)

$L report "$IMP" "$H1" "$H2" "$P" "$S" --store "$STORE" --out "$STORE/geometry.html"
echo "time: IMP $((trained - start)) s, hessians $((curvature - trained)) s, plane $((plane - curvature)) s," \
     "CIFAR training and surface $((cifar - plane)) s, total $(( $(t) - start )) s"
