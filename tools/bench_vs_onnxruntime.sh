#!/usr/bin/env bash
# Side-by-side CPU benchmark: `yolopipe bench` and ONNX Runtime (onnxruntime-node from the npm
# registry) on the same ONNX file (a dynamic-batch yolov8 export by tools/torch_reference.py), the
# same batch sizes and the same thread count, in one run on one machine. Prints both and the ratio.
#
# usage: tools/bench_vs_onnxruntime.sh [SCALE=n] [BATCHES="1 8"] [REPEATS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-n}
batches=${2:-"1 8"}
repeats=${3:-10}
threads=$(nproc)
work=${YOLOPIPE_BENCH_DIR:-$HOME/.cache/yolopipe-bench}
mkdir -p "$work"

if [ ! -d "$work/node_modules/onnxruntime-node" ]; then
  command -v npm >/dev/null || { echo "error: npm is needed (apt-get install npm)" >&2; exit 1; }
  echo "installing onnxruntime-node into $work" >&2
  (cd "$work" && npm install --silent --ignore-scripts onnxruntime-node@1.30.0 >/dev/null)
fi
model="$work/yolov8${scale}_dynamic.onnx"
if [ ! -f "$model" ]; then
  /usr/bin/python3 tools/torch_reference.py export --scale "$scale" --dynamic -o "$model"
fi
bazel build //tools:yolopipe >/dev/null 2>&1
cp tools/bench_onnxruntime.js "$work/"

for b in $batches; do
  y=$(bazel-bin/tools/yolopipe bench --model "$model" --batch "$b" --repeats "$repeats" \
      --warmup 2 --threads "$threads" 2>/dev/null)
  o=$(cd "$work" && node bench_onnxruntime.js "$model" "$b" 640 "$threads" "$repeats" 2)
  echo "yolopipe:    $y"
  echo "onnxruntime: $o"
  ym=$(sed -E 's/.*median ([0-9.]+) ms\/batch.*/\1/' <<<"$y")
  om=$(sed -E 's/.*median ([0-9.]+) ms\/batch.*/\1/' <<<"$o")
  awk -v y="$ym" -v o="$om" -v b="$b" \
    'BEGIN { printf "batch %d: yolopipe is %.2fx ONNX Runtime throughput (median)\n", b, o / y }'
done
