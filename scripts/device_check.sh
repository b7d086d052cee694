#!/usr/bin/env bash
# What only a GPU can show, in one call of at most 9 minutes on a machine with CUDA and no network:
#   1. the CUDA tests (bf16 autocast, channels_last, compile, a GPU checkpoint resumed without a GPU, GPU vs CPU
#      trajectories, packed networks), which skip on a machine without CUDA and are reported as skipped;
#   2. the image benchmark at full width, batch 128: eager fp32, bf16 autocast + channels_last, + compile, and five
#      runs packed into one, with TFLOP/s against the bf16 peak (1 and 2 together at most 3 minutes);
#   3. Paper A's `gpu` scale main grid, stopped before the call's time is up (what finished is kept), its tables
#      and provenance written to shipped/paper_a/gpu/ (no weights), with the projected GPU-hours of the paper scale.
#
#   make device-data device-deps     # here, first: data/ and device_deps/ (both ignored by git) to carry along
#   OUT=device_out bash scripts/device_check.sh
#
# It runs the package from the source tree under whatever Python and PyTorch the machine has, needing only torch,
# numpy and pandas there (tqdm comes from device_deps/; pytest only for part 1). Logs go to $OUT/<part>.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device_out}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONPATH="$PWD/src:$PWD/device_deps${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export BADMINIMA_DATA=${BADMINIMA_DATA:-$PWD/data}
export BADMINIMA_COMMIT=${BADMINIMA_COMMIT:-$(cat device_deps/COMMIT 2>/dev/null || echo unknown)}
grid_seconds=${GRID_SECONDS:-220}   # no job starts after this; the part's own limit is 80 s more
grid_scale=${GRID_SCALE:-gpu}       # the tests run the whole script on a CPU at smoke scale
bench_args=${BENCH_ARGS:---widths 1.0 --shape 1 28 28 --batches 30 --compile-models resnet18}
shipped=(); [ -n "${SHIPPED:-}" ] && shipped=(--out "$SHIPPED")   # default: shipped/paper_a/<scale>/

part() {  # part NAME SECONDS COMMAND...: run, keep the log, note the exit status
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)"
  local start=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc after $((SECONDS - start)) s" | tee -a "$out/summary.txt"
  tail -n 25 "$out/$name.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
} > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
part tests 60 $py -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_packed.py
# shellcheck disable=SC2086  # bench_args is a list of words
part bench_images 120 $py scripts/bench_images.py $bench_args --rates-out "$out/rates.json"
rates=(); [ -s "$out/rates.json" ] && rates=(--rates "$out/rates.json")
part gpu_grid $((grid_seconds + 80)) $py -m badminima.paper_a.shipped --scale "$grid_scale" \
  --seconds "$grid_seconds" --results "${RESULTS:-/tmp/badminima-gpu}" "${rates[@]}" "${shipped[@]}"
echo "== summary"
cat "$out/summary.txt"
