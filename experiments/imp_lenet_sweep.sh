#!/usr/bin/env bash
# The LeNet IMP sweep (imp_lenet_sweep.toml) end to end on a 2-worker LocalCluster, with one worker
# killed (kill -9) in the middle: Dask reschedules its task, which resumes from the store. Then one
# report over every IMP run of the sweep.
#
# By default a trial scale (TRIAL="--set steps=520it --set levels=1 --set eval_every=260it --set controls=none"; set
# TRIAL="" for the full study (8 IMP runs of 8 levels at 5,000 iterations: hours on 2 cores).
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$(dirname "$0")/.."
DATA=${LANDSCAPE_DATA:-../shared/data}
STORE=${STORE:-experiments-store}
KILL_AFTER=${KILL_AFTER:-300}
TRIAL=${TRIAL---set steps=520it --set levels=1 --set eval_every=260it --set controls=none}
OUT=${OUT:-$STORE/imp-lenet-sweep.json}
mkdir -p "$STORE"
started=$(date +%s)
# shellcheck disable=SC2086
.venv/bin/landscape sweep experiments/imp_lenet_sweep.toml --workers 2 --data-dir "$DATA" --store "$STORE" \
  $TRIAL --json --status-every 15 > "$OUT" &
sweep=$!
# Kill in the middle: once a training run of the sweep has a resume point (or after KILL_AFTER s).
for _ in $(seq "$KILL_AFTER"); do
  sleep 1
  .venv/bin/python -c "
import sys
from landscape.store import Store
sys.exit(0 if any(r.kind == 'train' and not r.complete and r.resume_step for r in Store(sys.argv[1]).runs()) else 1)
" "$STORE" 2>/dev/null && break
done
# The workers are the sweep's child processes (its LocalCluster's nannies spawn them, beside
# multiprocessing's resource tracker): kill the busiest worker.
workers() { ps -o pid=,pcpu=,args= --ppid "$sweep" | grep 'multiprocessing.spawn' || true; }
victim=$(workers | sort -k2 -nr | awk 'NR==1{print $1}')
if [ -n "$victim" ]; then
  echo "killing worker process $victim (kill -9) at $(($(date +%s) - started)) s" >&2
  kill -9 "$victim"
  sleep 20   # its nanny starts a new worker process
  echo "worker processes 20 s later: $(workers | awk '{print $1}' | xargs)" >&2
fi
status=0
wait "$sweep" || status=$?
finished=$(date +%s)
runs=$(.venv/bin/python -c "import json,sys; print(' '.join(r for t in json.load(open(sys.argv[1])) for r in t['runs']))" "$OUT")
.venv/bin/landscape report $runs --store "$STORE" --out "$STORE/imp-lenet-sweep.html"
.venv/bin/python -c "
import json, sys
tasks = json.load(open(sys.argv[1]))
for t in tasks: print(f\"{t['status']:7s} {t['task']:38s} {' '.join(t['runs'])} {t['seconds']:.0f}s {t['error']}\")
" "$OUT"
echo "sweep exit status $status; time: $((finished - started)) s for the sweep"
exit "$status"
