#!/usr/bin/env bash
# Installs what is missing, builds everything, runs every test, and prints the per-test-case
# summary "N passed, N failed" as its last line (Bazel's own summary counts targets, not cases).
# Also runs the threaded runtime tests under ThreadSanitizer and the unit and pipeline tests under
# AddressSanitizer + UndefinedBehaviorSanitizer (their cases count too, as "tsan //target" and
# "asan //target"), fuzzes every file loader for a bounded time with libFuzzer (tools/fuzz.sh),
# and builds the CUDA configuration when a CUDA toolkit is present (CI has one, but no GPU).
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh

status=0
bazel test //... || status=$?
default_logs=$(bazel info bazel-testlogs 2>/dev/null)
default_targets=$(bazel query 'tests(//...)' 2>/dev/null)

# The threaded runtime (communicator, hand-off queues, pipeline streams, embedding engine) under
# ThreadSanitizer; its own output tree (--config=tsan sets a platform suffix).
tsan_targets="//runtime/comm:local_communicator_test //runtime/pipeline:handoff_queue_test
  //runtime/pipeline:pipeline_test //runtime/pipeline:pipeline_device_path_test
  //runtime/pipeline/testing:emulated_device_path_test //runtime/embed:yolopipe_test"
echo "test: ThreadSanitizer run of the threaded runtime tests (--config=tsan)"
# shellcheck disable=SC2086
bazel test --config=tsan $tsan_targets || status=$?
tsan_logs=$(bazel info --config=tsan bazel-testlogs 2>/dev/null)

# The unit and pipeline tests under AddressSanitizer + UndefinedBehaviorSanitizer: every test of
# base/, ops/, graph/ and runtime/ except the GPU ones (nothing runs without a GPU) and the soak
# test (10,000 micro-batches: minutes under ASan), and the CLI tests of the threaded and I/O
# commands (run, detect, stream, faults and signals) with the yolopipe binary built under ASan too.
# The other CLI tests (MPI launches, PyTorch references, planning) run in the default
# configuration only, to fit CI's time.
asan_targets=$(bazel query 'tests(//base/... + //ops/... + //graph/... + //runtime/...)
  except tests(//ops/cuda/... + //runtime/cuda/...) except attr(tags, "soak", tests(//...))
  + //tests:cli_test + //tests:detect_cli_test + //tests:stream_cli_test
  + //tests:fault_cli_test + //tests:pipeline_cli_test' 2>/dev/null)
echo "test: AddressSanitizer + UndefinedBehaviorSanitizer run of the unit, pipeline and CLI I/O tests (--config=asan)"
# shellcheck disable=SC2086
bazel test --config=asan $asan_targets || status=$?
asan_logs=$(bazel info --config=asan bazel-testlogs 2>/dev/null)

# Every file loader (ONNX importer, .npy, Profile/Plan readers, image decoders) under libFuzzer
# (clang, ASan + UBSan) for FUZZ_SECONDS each (default 60); each target counts as one case,
# "fuzz <target>".
fuzz_results=$(mktemp)
echo "test: fuzzing the file loaders for ${FUZZ_SECONDS:-60} s each (tools/fuzz.sh)"
FUZZ_RESULTS="$fuzz_results" tools/fuzz.sh "${FUZZ_SECONDS:-60}" || status=$?

if [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  echo "test: building the CUDA configuration (--config=cuda //...)"
  if ! bazel build --config=cuda //...; then
    echo "test: the --config=cuda build FAILED"
    status=1
  fi
else
  echo "test: no CUDA toolkit at ${CUDA_HOME:-/usr/local/cuda}; skipping the --config=cuda build"
fi
# Leave the default configuration's outputs behind the bazel-bin/bazel-testlogs links.
bazel build //... >/dev/null 2>&1 || true

# Count individual test cases from each test target's test.xml. A target that did not produce one
# (it failed to build, crashed before writing results, or timed out) counts as one failed case.
runs=()
for t in $default_targets; do runs+=("$default_logs|$t"); done
for t in $tsan_targets; do runs+=("$tsan_logs|$t"); done
for t in $asan_targets; do runs+=("$asan_logs|$t"); done
/usr/bin/python3 - "$status" "$fuzz_results" "${runs[@]}" <<'PY'
import os, sys, xml.etree.ElementTree as ET
status = int(sys.argv[1])
passed = failed = skipped = 0
with open(sys.argv[2]) as f:
    for line in f:
        target, result = line.split()
        if result == "pass":
            passed += 1
        else:
            failed += 1
            print(f"FAILED: fuzz {target}")
for run in sys.argv[3:]:
    logs, target = run.split("|", 1)
    pkg, name = target.lstrip("/").split(":")
    path = os.path.join(logs, pkg, name, "test.xml")
    if "-tsan" in logs:
        target = "tsan " + target
    elif "-asan" in logs:
        target = "asan " + target
    if not os.path.exists(path):
        print(f"no results for {target}: counted as 1 failed")
        failed += 1
        continue
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        print(f"unreadable results for {target}: counted as 1 failed")
        failed += 1
        continue
    cases = root.iter("testcase")
    n = 0
    for case in cases:
        n += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            print(f"FAILED: {target} {case.get('classname')}.{case.get('name')}")
        elif case.get("result") == "skipped" or case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    if n == 0:
        print(f"no test cases in {target}: counted as 1 failed")
        failed += 1
if failed == 0 and status != 0:
    # Bazel failed outside any test case (e.g. the CUDA build): make the summary say so.
    print("a build step failed: counted as 1 failed")
    failed = 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
code=$?
rm -f "$fuzz_results"
exit $code
