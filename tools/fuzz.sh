#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (--config=fuzz: clang 14, ASan, UBSan) and runs each for a
# bounded time on a copy of its seed corpus (plus its regression inputs). Prints, per target, the
# number of executions and whether it crashed; exits non-zero if any target crashed, timed out on
# an input, ran out of memory or failed to build, naming the crashing input.
#
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#     SECONDS_PER_TARGET  default $FUZZ_SECONDS or 60
#     TARGET              onnx_import npy profile plan image (default: all)
#   FUZZ_KEEP=1         keep the temporary corpora (new inputs the fuzzer found)
#   BAZEL               the Bazel command (default "bazel"; e.g. "bazel --output_base=...")
#   FUZZ_RESULTS        a file to append "<target> pass|fail" lines to (tools/test.sh counts them)
#
# A crash reproduces without libFuzzer, with the same code built by gcc:
#   bazel run //fuzz:fuzz_<target> -- /path/to/crash-...
# and belongs, once fixed, in fuzz/regressions/<target>/ (replayed by //fuzz:*_regression_test).
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-${FUZZ_SECONDS:-60}}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(onnx_import npy profile plan image); fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "fuzz: SECONDS_PER_TARGET must be a positive integer (got '$seconds')" >&2
  exit 2
fi
read -r -a bazel <<<"${BAZEL:-bazel}"

# Largest input per target: a little above its largest seed, so mutations stay near real files.
max_len_for() {
  case "$1" in
    onnx_import) echo 16384 ;;
    npy) echo 4096 ;;
    profile) echo 16384 ;;
    plan) echo 8192 ;;
    image) echo 8192 ;;
    *) return 1 ;;
  esac
}

labels=()
for t in "${targets[@]}"; do
  if ! max_len_for "$t" >/dev/null; then
    echo "fuzz: unknown target '$t' (known: onnx_import npy profile plan image)" >&2
    exit 2
  fi
  labels+=("//fuzz:fuzz_$t")
done

echo "fuzz: building ${labels[*]} (--config=fuzz)"
# --symlink_prefix=/: leave the bazel-bin/... links of the default configuration alone.
if ! "${bazel[@]}" build --config=fuzz --symlink_prefix=/ "${labels[@]}"; then
  echo "fuzz: FAILED: build"
  exit 1
fi
bin_dir=$("${bazel[@]}" info --config=fuzz bazel-bin 2>/dev/null)

work=$(mktemp -d /tmp/yolopipe_fuzz.XXXXXX)
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$PWD/fuzz/ubsan_suppressions.txt}"
export OMP_NUM_THREADS=1

status=0
summary=()
for t in "${targets[@]}"; do
  corpus="$work/$t/corpus"
  artifacts="$work/$t/artifacts"
  log="$work/$t/fuzz.log"
  mkdir -p "$corpus" "$artifacts"
  cp -r "fuzz/corpus/$t/." "$corpus/"
  regressions=()
  if [ -d "fuzz/regressions/$t" ]; then regressions=("fuzz/regressions/$t"); fi
  echo "fuzz: $t for ${seconds}s (max_len $(max_len_for "$t"))"
  start=$SECONDS
  "$bin_dir/fuzz/fuzz_$t" "$corpus" "${regressions[@]}" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
    -max_len="$(max_len_for "$t")" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    >"$log" 2>&1
  rc=$?
  elapsed=$((SECONDS - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if ((rc == 0)); then
    line="$t: ${execs:-?} executions in ${elapsed}s, no crash"
  else
    status=1
    line="$t: FAILED (exit $rc) after ${execs:-?} executions in ${elapsed}s; input: ${crash:-none written}; log: $log"
    echo "---- $t: last lines of $log"
    grep -v '^#[0-9]' "$log" | tail -40
  fi
  echo "fuzz: $line"
  summary+=("$line")
  if [ -n "${FUZZ_RESULTS:-}" ]; then
    echo "$t $( ((rc == 0)) && echo pass || echo fail)" >>"$FUZZ_RESULTS"
  fi
done

echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if ((status == 0)) && [ "${FUZZ_KEEP:-0}" != 1 ]; then
  rm -rf "$work"
else
  echo "fuzz: corpora and logs kept in $work"
fi
exit "$status"
