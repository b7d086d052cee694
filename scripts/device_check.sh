#!/usr/bin/env bash
# What only a GPU can show, in one call on a machine with CUDA: the CUDA tests (bf16 autocast, channels_last,
# compile, a GPU checkpoint resumed without a GPU, GPU vs CPU trajectories), then throughput figures (Paper A's
# convnets at full width; Paper B's batched nets), then Paper A's effect at full width on real data.
# Every part has its own time limit, so one that fails or hangs still leaves the others' figures.
#
#   OUT=device_out BADMINIMA_DATA=/path/with/fashion-mnist bash scripts/device_check.sh
#
# Writes <part>.txt files under $OUT (default device_out/) and prints a summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device_out}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

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
  $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; } > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
part tests 150 $py -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_train.py tests/test_models.py
part bench_images 150 $py scripts/bench_images.py --widths 1.0 --shape 3 32 32 --batches 40 \
  --compile-models resnet18
part bench_ensemble 90 $py scripts/bench_ensemble.py --device cuda --widths 10 100 500 2000 --members 32 1024 \
  --steps 200 --repeats 2 --alone 2
part gpu_pilot 120 $py scripts/gpu_pilot.py --seeds 0 1 2 --results /tmp/badminima-pilot
echo "== summary"
cat "$out/summary.txt"
