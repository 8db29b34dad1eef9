#!/usr/bin/env bash
# Installs what is missing, builds everything, runs every test, and prints the per-test-case
# summary "N passed, N failed" as its last line (Bazel's own summary counts targets, not cases).
# Also builds the CUDA configuration when a CUDA toolkit is present (CI has one, but no GPU).
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh

status=0
bazel test //... || status=$?

if [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  echo "test: building the CUDA configuration (--config=cuda //...)"
  if ! bazel build --config=cuda //...; then
    echo "test: the --config=cuda build FAILED"
    status=1
  fi
  # Leave the default configuration's binaries in bazel-bin.
  bazel build //... >/dev/null 2>&1 || true
else
  echo "test: no CUDA toolkit at ${CUDA_HOME:-/usr/local/cuda}; skipping the --config=cuda build"
fi

# Count individual test cases from each test target's test.xml. A target that did not produce one
# (it failed to build, crashed before writing results, or timed out) counts as one failed case.
targets=$(bazel query 'tests(//...)' 2>/dev/null)
/usr/bin/python3 - "$status" $targets <<'PY'
import os, sys, xml.etree.ElementTree as ET
status = int(sys.argv[1])
passed = failed = skipped = 0
for target in sys.argv[2:]:
    pkg, name = target.lstrip("/").split(":")
    path = os.path.join("bazel-testlogs", pkg, name, "test.xml")
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
