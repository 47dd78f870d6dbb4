#!/usr/bin/env bash
# What a GPU machine should run first, in one go: the CUDA tests, the paper-scale network's
# training options (tools/bench.py), the GPU recipe (study comparison64: six workers side by side
# on the one GPU, each training and evaluating its share of the runs, then its rows in the report)
# and the demo network's benchmark tables. Each step gets what is left of a deadline; trainings
# still going at theirs get SIGTERM (they checkpoint) and the same command resumes them. Logs and the benchmark tables go to
# OUT_DIR; the report rows to paper_appendix/.
#
#   bash tools/gpu_check.sh [DEADLINE_SECONDS=560] [OUT_DIR=gpu_check] [ROOT=runs/gpu]
#   QUICK=1 bash tools/gpu_check.sh 300 /tmp/check /tmp/gpu   # the same steps on a CPU, tiny (a rehearsal)
#
# STUDY=comparison runs the comparison study's runs that are not kept yet (its 32 px seeds, hours
# each on a CPU) in the recipe's place. The trainings and evaluations live under ROOT (git
# ignores runs/); OUT_DIR/results.tgz holds the kept records and the report, to unpack in a checkout.
# Set SDE_EDGE_CACHE to a folder holding classifiers/shapes-<SIZE>px-1ch-v3.pt to reuse that classifier.
# SHARDS picks the workers (of six) that run, e.g. SHARDS="0 1" for seed 0's E and D runs only, and
# CHECKS=0 leaves out the CUDA tests and the benchmarks: one seed of the recipe per short lease,
#   CHECKS=0 SHARDS="0 1" SDE_EDGE_CACHE=$PWD/cache bash tools/gpu_check.sh 540 $OUT runs/gpu
set -u
DEADLINE=${1:-560}
OUT_DIR=${2:-gpu_check}
ROOT=${3:-runs/gpu}
PYTHON=${PYTHON:-python3}
STUDY=${STUDY:-comparison64}
SHARDS=${SHARDS:-0 1 2 3 4 5}
CHECKS=${CHECKS:-1}
case "$STUDY" in comparison) SIZE=32 ;; comparison64) SIZE=64 ;; *) echo "STUDY: comparison64 or comparison, got $STUDY"; exit 2 ;; esac
if [ -n "${QUICK:-}" ]; then SIZE=8 STUDY_FLAGS=--quick DEVICE=cpu; else STUDY_FLAGS= DEVICE=cuda; fi
START=$SECONDS
mkdir -p "$OUT_DIR" "$ROOT"
left() { echo $((DEADLINE - (SECONDS - START))); }
log() { echo "[$((SECONDS - START)) s] $*" | tee -a "$OUT_DIR/gpu_check.log"; }

log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"
log "$($PYTHON -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())' 2>&1)"

# the 64 px shapes splits, rendered once into the cache with most cores while the CUDA tests run
OMP_NUM_THREADS=12 $PYTHON -c "from sde_edge.data.shapes import shapes; [shapes(s, $SIZE, 1) for s in ('test', 'train')]" \
    >"$OUT_DIR/render.log" 2>&1 &
render=$!
if [ "$CHECKS" != 0 ]; then
    timeout 150 $PYTHON -m pytest -q -m cuda -n 4 tests >"$OUT_DIR/cuda_tests.log" 2>&1
    log "CUDA tests (rc $?): $(tail -n 1 "$OUT_DIR/cuda_tests.log")"
fi
# the paper-scale network's training options, while the GPU has nothing else to do
# (on the H100: 90 s were too few for 10 repeats beside the rendering; 5 repeats alone took under 150 s)
if [ -z "${QUICK:-}" ] && [ "$CHECKS" != 0 ]; then  # (minutes of a CPU in a rehearsal)
    timeout 150 $PYTHON tools/bench.py --device $DEVICE --only options --config configs/celeba64_edge.py --repeats 5 \
        >>"$OUT_DIR/bench.md" 2>&1
    log "benchmark: options of the 35 M-parameter network (rc $?)"
fi
wait $render
log "$SIZE px shapes rendered (rc $?)"

# the features' classifier (trained on the CPU once, cached) beside the trainings
OMP_NUM_THREADS=4 $PYTHON -c "from sde_edge.metrics.classifier import load_classifier as f; print(f('shapes', $SIZE, 1, progress=False)[1])" \
    >"$OUT_DIR/classifier.log" 2>&1 &
classifier=$!
# the GPU recipe: six workers side by side, each training and then evaluating its share of the runs
# (--shard i/6), leaving about 90 s for the report and the demo benchmark
budget=$(( $(left) - 90 ))
# MPS runs the six processes' kernels on the GPU at once instead of in turns: 25.2 steps/s in all
# against 19.5 on the H100 (30.7 with the recipe's compiled step)
mps=0
if [ -z "${QUICK:-}" ] && nvidia-cuda-mps-control -d >/dev/null 2>&1; then mps=1; log "MPS started"; fi
pids=()
for i in $SHARDS; do
    OMP_NUM_THREADS=2 timeout -s TERM -k 60 "$budget" $PYTHON tools/experiments.py "$STUDY" \
        --shard "$i/6" --root "$ROOT" $STUDY_FLAGS >"$OUT_DIR/worker_$i.log" 2>&1 &
    pids+=($!)
done
stopped=0
for pid in "${pids[@]}"; do wait "$pid" || stopped=$((stopped + 1)); done
[ "$mps" = 0 ] || echo quit | nvidia-cuda-mps-control
for metrics in "$ROOT"/trainings/*/metrics.csv; do
    log "$(basename "$(dirname "$metrics")"): step $(tail -n 1 "$metrics" | cut -d, -f1)"
done
wait $classifier
log "classifier (rc $?): held-out accuracy $(tail -n 1 "$OUT_DIR/classifier.log")"
[ "$stopped" = 0 ] || log "$stopped of ${#pids[@]} workers stopped at the deadline (trainings checkpointed): run this again to resume"
# the report rows from what is on disk (arms not done are marked pending)
timeout 60 $PYTHON tools/experiments.py "$STUDY" --cached --root "$ROOT" $STUDY_FLAGS >"$OUT_DIR/$STUDY.log" 2>&1
log "$STUDY report (rc $?): $(tail -n 1 "$OUT_DIR/$STUDY.log")"
report=paper_appendix; [ -z "${QUICK:-}" ] || report=$ROOT  # --quick reports under ROOT and keeps nothing
tar czf "$OUT_DIR/results.tgz" "$report/REPRODUCTION.md" "$report/reproduction"

# the demo network's tables with what is left
if [ "$CHECKS" != 0 ] && [ "$(left)" -gt 30 ]; then
    timeout $(( $(left) - 10 )) $PYTHON tools/bench.py --device $DEVICE --only train,samplers,options --repeats 20 \
        >>"$OUT_DIR/bench.md" 2>&1
    log "benchmark: the demo network's tables (rc $?)"
fi
log "done"
