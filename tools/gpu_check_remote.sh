#!/usr/bin/env bash
# GPU check, part 2 (runs THERE, on the GPU machine, from the repository root): the one command of
# the device call that tools/gpu_check.sh prints. No Bazel, no network: it uses the bundle that
# tools/gpu_check.sh built (.gpu_bundle/yolopipe_gpu_bundle.tar.gz, carried with the call) and the
# PyTorch venv there.
#
#   1. environment: nvidia-smi, driver, PyTorch / CUDA / cuDNN / NCCL versions, which libraries
#      the yolopipe binaries resolve;
#   2. the GPU tests: every bundled test binary, filtered to the cases that need a GPU (they
#      skipped on the build machine, where the others passed), gtest XML kept;
#   2b. the multi-process NCCL transport: 2 and 4 ranks of nccl_communicator_test_ranks on this one
#      GPU (each its own NCCL_HOSTID, NCCL_SOCKET_IFNAME=lo; ranks meet through FileBootstrap's
#      directory, since there is no MPI here), and `yolopipe profile-link --transport nccl` over 2
#      such ranks (written to $OUT/link_nccl.pbtxt);
#   3. `yolopipe run` with CUDA stages: single, pipeline (2 stages on the GPU) and data mode;
#      then MPI processes (the bundle's OpenMPI) with a CUDA stage each, against one process:
#      2 ranks over MPI, 2 and 4 ranks over NCCL (--nccl);
#   3b. `yolopipe bench --device cuda:0` for yolov8{n,s,m,l,x} at batch 1 and 32, fp16, CUDA graphs
#      (and, with time left, a few cases with --cudnn_fusion: which epilogue is faster);
#   4. the PyTorch baseline (tools/torch_gpu_baseline.py: fp16, channels_last, CUDA-graph replay)
#      for the same models and batches;
#   5. a summary table with the ratios and the issue's targets, on stdout and in $OUT/summary.md.
# Every step runs under `timeout` and within a share of the time budget; a failure is reported and
# the script goes on. Exit status: 0 when every step ran and passed, 1 otherwise.
#
# usage: bash tools/gpu_check_remote.sh
#   OUT=DIR                 where results go (the device tool sets it; default /tmp/yolopipe_gpu_check)
#   GPU_CHECK_BUDGET_S=480  seconds for steps 1-4 (keep the device call's timeout_s above it + 60):
#                           tests to 30%, pipeline runs to 50%, bench to 75%, PyTorch the rest
#   MODELS="n s m l x" BATCHES="1 32"
#   GPU_CHECK_ALL_CASES=1   run every test case, not only those that skipped on the build machine
#                           (cases that read data files the bundle left out then fail: build the
#                           bundle with tools/gpu_check.sh --with-data for that)
#   TORCH_VENV=/opt/torch/.venv   GPU_BUNDLE=DIR (an unpacked bundle; default: unpack the tarball)
#   BENCH_REPEATS_B1/BENCH_WARMUP_B1 (50/5), BENCH_REPEATS/BENCH_WARMUP (20/3, batch > 1),
#   FUSION_CASES="n:1 n:32 x:32" (rerun with --cudnn_fusion if bench has it and time is left;
#   FUSION_CASES="" skips them)
#   TORCH_ITERS/TORCH_REPEATS (20/5)
#   To test the plumbing without a GPU: BENCH_DEVICE=cpu MPI_DEVICE=cpu TORCH_BASELINE_ARGS=--dry-run
# Files under $OUT (the device tool brings back at most 8): summary.md, gpu_check.log (all output),
# bench.txt, torch.txt (one key=value line per case), gtest_xml.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

T0=$(date +%s)
BUDGET_S=${GPU_CHECK_BUDGET_S:-480}
OUT=${OUT:-/tmp/yolopipe_gpu_check}
MODELS=${MODELS:-"n s m l x"}
BATCHES=${BATCHES:-"1 32"}
VENV=${TORCH_VENV:-/opt/torch/.venv}
BENCH_DEVICE=${BENCH_DEVICE:-cuda:0}  # other values only to test this script without a GPU
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
SUMMARY=$OUT/summary.md
: >"$LOG"
WORK=$(mktemp -d /tmp/yolopipe_gpu_check.XXXXXX)
mkdir -p "$WORK/xml" "$WORK/logs"
ORIG_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
PROBLEMS=()

say() { echo "$*"; echo "$*" >>"$LOG"; }
note() { echo "$*" >>"$LOG"; }
problem() { PROBLEMS+=("$*"); say "PROBLEM: $*"; }
elapsed() { echo $(($(date +%s) - T0)); }
# Seconds a step may take: its cap, or less so that its phase ends by $2 seconds into the budget.
allowance() {
  local cap=$1 left=$(($2 - $(elapsed)))
  [ "$left" -lt "$cap" ] && cap=$left
  echo "$cap"
}
# Phase deadlines, in seconds since the start: tests, then the pipeline runs (CUDA stages, MPI and
# NCCL), then yolopipe bench, then PyTorch (which keeps at least its own share however long the
# others take).
TESTS_END=$((BUDGET_S * 30 / 100))
PIPE_END=$((BUDGET_S * 50 / 100))
BENCH_END=$((BUDGET_S * 75 / 100))
TORCH_END=$((BUDGET_S - 5))
csv() { tr -s ' ' ',' <<<"$*"; }

say "# yolopipe GPU check ($(date -u '+%Y-%m-%d %H:%M:%S UTC'), budget ${BUDGET_S} s)"

# ------------------------------------------------------------------------------------ the bundle
PY=$VENV/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
BUNDLE=${GPU_BUNDLE:-}
if [ -z "$BUNDLE" ]; then
  if [ -f .gpu_bundle/stage/tests.txt ]; then
    BUNDLE=$PWD/.gpu_bundle/stage
  elif [ -f .gpu_bundle/yolopipe_gpu_bundle.tar.gz ]; then
    BUNDLE=$WORK/bundle
    mkdir -p "$BUNDLE"
    if ! tar -C "$BUNDLE" -xzf .gpu_bundle/yolopipe_gpu_bundle.tar.gz 2>>"$LOG"; then
      "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        .gpu_bundle/yolopipe_gpu_bundle.tar.gz "$BUNDLE" 2>>"$LOG"
    fi
  fi
fi
if [ -z "$BUNDLE" ] || [ ! -f "$BUNDLE/tests.txt" ]; then
  say "error: no bundle: run tools/gpu_check.sh on the build machine and carry"
  say "       .gpu_bundle/yolopipe_gpu_bundle.tar.gz with the call (or set GPU_BUNDLE)"
  exit 1
fi
WS=$(cat "$BUNDLE/workspace.txt" 2>/dev/null || echo yolopipe)
YP=$BUNDLE/bin/tools/yolopipe
say "bundle: $BUNDLE ($(sed -n 's/^built: //p' "$BUNDLE/MANIFEST.txt"))"
note "$(cat "$BUNDLE/MANIFEST.txt")"

# ------------------------------------------------------------------------- library search path
# cuDNN and NCCL from the PyTorch venv first (the versions PyTorch uses, so both sides of the
# comparison run the same cuDNN), then the bundle's libraries, then the CUDA runtime and the venv's
# other NVIDIA libraries (cuDNN loads NVRTC and cuBLAS(Lt) from there at run time).
NV=$(find "$VENV"/lib -maxdepth 3 -path '*/site-packages/nvidia' -type d 2>/dev/null | head -1)
NV=${NV:-/nonexistent/venv-nvidia}  # keeps the globs below from matching /*/lib
libdirs=()
for d in "$NV/cudnn/lib" "$NV/nccl/lib"; do
  if [ -d "$d" ]; then libdirs+=("$d"); else problem "missing $d (cuDNN/NCCL of the venv)"; fi
done
libdirs+=("$BUNDLE/lib")
while read -r d; do libdirs+=("$d"); done < <(find "$BUNDLE/bin" -type d -name '_solib_*')
cudart_dir=""
for d in "$NV"/*/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64; do
  if [ -e "$d/libcudart.so.13" ]; then cudart_dir=$d; break; fi
done
if [ -n "$cudart_dir" ]; then libdirs+=("$cudart_dir")
else problem "no libcudart.so.13 found (venv or /usr/local/cuda)"; fi
for d in "$NV"/*/lib; do
  [ -d "$d" ] || continue
  case " ${libdirs[*]} " in *" $d "*) ;; *) libdirs+=("$d") ;; esac
done
YP_LD=$(IFS=:; echo "${libdirs[*]}")${ORIG_LD_LIBRARY_PATH:+:$ORIG_LD_LIBRARY_PATH}

# Debian 12's binaries need glibc >= the manifest's needs_glibc and libstdc++ >= needs_glibcxx.
# If this machine's libstdc++ is older, the bundle's lib_compat/ (Debian's) goes first.
ldd_out=$(LD_LIBRARY_PATH=$YP_LD ldd "$YP" 2>&1)
if grep -q "GLIBCXX.*not found\|libstdc++.*not found\|GCC_.*not found" <<<"$ldd_out"; then
  say "this machine's libstdc++ is older than the build machine's: using the bundle's lib_compat/"
  YP_LD=$BUNDLE/lib_compat:$YP_LD
  ldd_out=$(LD_LIBRARY_PATH=$YP_LD ldd "$YP" 2>&1)
fi
if grep -q "not found" <<<"$ldd_out"; then
  problem "yolopipe cannot load: $(grep 'not found' <<<"$ldd_out" | tr -s ' \t' ' ' | paste -sd';' -)"
  note "(glibc here: $(ldd --version 2>&1 | head -1); bundle needs $(sed -n 's/^needs_glibc: //p' "$BUNDLE/MANIFEST.txt"))"
fi

# ---------------------------------------------------------------------------------- environment
say ""
say "## Environment"
smi=$(timeout 20 nvidia-smi 2>&1) || problem "nvidia-smi failed"
note "$smi"
say "gpu: $(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
               --format=csv,noheader 2>&1 | head -1)"
say "host: $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"'), $(ldd --version 2>&1 | head -1)"
say "python: $PY"
say "$(LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH timeout 90 "$PY" -c '
import importlib.metadata as md, torch
def v(name):
    try:
        return md.version(name)
    except Exception:
        return "?"
nccl = ".".join(map(str, torch.cuda.nccl.version())) if torch.cuda.is_available() else "?"
cudnn_wheel, nccl_wheel = v("nvidia-cudnn-cu13"), v("nvidia-nccl-cu13")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()},"
      f" NCCL {nccl}); wheels: nvidia-cudnn-cu13 {cudnn_wheel}, nvidia-nccl-cu13 {nccl_wheel};"
      f" cuda available: {torch.cuda.is_available()}")
' 2>&1 | tail -1)"
say "yolopipe resolves: $(grep -E 'libcudnn|libnccl|libcudart|libdnnl|libstdc' <<<"$ldd_out" |
                         awk '{ print $1 " -> " $3 }' | paste -sd';' -)"
note "LD_LIBRARY_PATH for yolopipe: $YP_LD"

# ------------------------------------------------------------------------------------ GPU tests
say ""
say "## GPU tests"
TEST_ROWS=()
while read -r rel filter; do
  [ -n "$rel" ] || continue
  name=${rel//\//_}
  if [ "${GPU_CHECK_ALL_CASES:-0}" = 1 ]; then
    filter='*'
  elif [ "$filter" = "-" ] || [ -z "$filter" ]; then
    TEST_ROWS+=("| $rel | not run: no case needs a GPU (all passed on the build machine) | |")
    say "  --    $rel: no case needs a GPU"
    continue
  fi
  t=$(allowance 120 "$TESTS_END")
  if [ "$t" -lt 5 ]; then
    problem "$rel not run: the tests' share of the budget is spent"
    TEST_ROWS+=("| $rel | NOT RUN (out of time) | |")
    continue
  fi
  rf=$BUNDLE/bin/$rel.runfiles
  wd=$rf/$WS
  [ -d "$wd" ] || wd=$WORK
  start=$(date +%s)
  (cd "$wd" && LD_LIBRARY_PATH=$YP_LD TEST_SRCDIR=$rf RUNFILES_DIR=$rf TEST_WORKSPACE=$WS \
     TEST_TMPDIR=$WORK timeout -k 5 "$t" "$BUNDLE/bin/$rel" --gtest_filter="$filter" \
     --gtest_output="xml:$WORK/xml/$name.xml") </dev/null >"$WORK/logs/$name.log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  { echo "----- $rel (exit $rc, $secs s)"; cat "$WORK/logs/$name.log"; } >>"$LOG"
  passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$WORK/logs/$name.log")
  skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$WORK/logs/$name.log")
  failed=$(sed -n 's/^\[  FAILED  \] \([^ ]*\) (.*/\1/p' "$WORK/logs/$name.log" | sort -u |
           paste -sd' ' -)
  counts="${passed:-0} passed, ${skipped:-0} skipped, $secs s"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    status="TIMEOUT after ${t} s"
    problem "$rel timed out after $t s (last line: $(tail -1 "$WORK/logs/$name.log"))"
  elif [ "$rc" != 0 ]; then
    status="FAIL (exit $rc)"
    problem "$rel failed: ${failed:-$(tail -1 "$WORK/logs/$name.log")}"
  elif [ "${skipped:-0}" != 0 ] && grep -q "no CUDA devices" "$WORK/logs/$name.log"; then
    status="PASS, but ${skipped} case(s) SKIPPED: no CUDA devices"
    problem "$rel skipped ${skipped} case(s) for want of a GPU: $(grep -m1 'no CUDA devices' "$WORK/logs/$name.log")"
  elif [ "${skipped:-0}" != 0 ]; then
    status="PASS (${skipped} skipped by design for this build, e.g. stub-only checks)"
  else
    status="PASS"
  fi
  say "  $status  $rel ($counts)"
  TEST_ROWS+=("| $rel | $status | $counts${failed:+; failed: $failed} |")
done <"$BUNDLE/gpu_cases.txt"

# NCCL ranks: N processes on the one GPU, meeting through a bootstrap directory.
NCCL_BIN=$BUNDLE/bin/runtime/cuda/nccl_communicator_test_ranks
if [ -x "$NCCL_BIN" ]; then
  for n in 2 4; do
    t=$(allowance 90 "$TESTS_END")
    if [ "$t" -lt 10 ]; then
      problem "NCCL $n ranks not run: the tests' share of the budget is spent"
      TEST_ROWS+=("| NCCL, $n ranks on one GPU | NOT RUN (out of time) | |")
      continue
    fi
    boot=$WORK/nccl_boot_$n
    rm -rf "$boot" && mkdir -p "$boot"
    pids=()
    for ((r = 0; r < n; r++)); do
      LD_LIBRARY_PATH=$YP_LD YOLOPIPE_BOOTSTRAP_DIR=$boot YOLOPIPE_RANK=$r YOLOPIPE_WORLD_SIZE=$n \
        YOLOPIPE_LOCAL_RANK=0 NCCL_HOSTID=yolopipe-rank-$r NCCL_SOCKET_IFNAME=lo NCCL_DEBUG=WARN \
        timeout -k 5 "$t" "$NCCL_BIN" >"$WORK/logs/nccl_${n}_$r.log" 2>&1 &
      pids+=($!)
    done
    rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=$?; done
    for ((r = 0; r < n; r++)); do
      { echo "----- NCCL $n ranks, rank $r"; cat "$WORK/logs/nccl_${n}_$r.log"; } >>"$LOG"
    done
    passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$WORK/logs/nccl_${n}_0.log")
    skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$WORK/logs/nccl_${n}_0.log")
    if [ "$rc" != 0 ]; then
      status="FAIL (exit $rc)"
      problem "NCCL with $n ranks on one GPU failed (rank 0: $(tail -1 "$WORK/logs/nccl_${n}_0.log"))"
    elif [ "${skipped:-0}" != 0 ]; then
      status="PASS, but ${skipped} case(s) SKIPPED"
      problem "NCCL with $n ranks skipped ${skipped} case(s): $(grep -m1 -i 'skip' "$WORK/logs/nccl_${n}_0.log")"
    else
      status="PASS"
    fi
    say "  $status  NCCL, $n ranks on one GPU (${passed:-0} passed)"
    TEST_ROWS+=("| NCCL, $n ranks on one GPU | $status | ${passed:-0} passed on rank 0 |")
  done
else
  problem "the NCCL rank binary is not in the bundle"
fi

# profile-link over NCCL: 2 ranks of yolopipe on the one GPU ping-pong device buffers (the link
# the planner would price; same-GPU ranks with distinct NCCL_HOSTIDs talk over sockets on lo).
t=$(allowance 60 "$TESTS_END")
if [ "$t" -lt 10 ]; then
  problem "profile-link over NCCL not run: the tests' share of the budget is spent"
else
  boot=$WORK/link_boot
  rm -rf "$boot" && mkdir -p "$boot"
  pids=()
  for r in 0 1; do
    LD_LIBRARY_PATH=$YP_LD YOLOPIPE_BOOTSTRAP_DIR=$boot YOLOPIPE_RANK=$r YOLOPIPE_WORLD_SIZE=2 \
      YOLOPIPE_LOCAL_RANK=0 NCCL_HOSTID=yolopipe-link-$r NCCL_SOCKET_IFNAME=lo NCCL_DEBUG=WARN \
      timeout -k 5 "$t" "$YP" profile-link --transport nccl --sizes 4K,64K,1M,16M --repeats 10 \
      -o "$OUT/link_nccl.pbtxt" >"$WORK/logs/link_$r.log" 2>&1 &
    pids+=($!)
  done
  rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  for r in 0 1; do { echo "----- profile-link nccl, rank $r"; cat "$WORK/logs/link_$r.log"; } >>"$LOG"; done
  if [ "$rc" = 0 ]; then
    say "  PASS  profile-link over NCCL: $(grep -m1 '^fit:' "$WORK/logs/link_0.log")"
    TEST_ROWS+=("| profile-link over NCCL, 2 ranks | PASS | $(grep -m1 '^fit:' "$WORK/logs/link_0.log") |")
  else
    problem "profile-link over NCCL failed (exit $rc): $(grep . "$WORK/logs/link_0.log" | tail -1)"
    TEST_ROWS+=("| profile-link over NCCL, 2 ranks | FAIL (exit $rc) | |")
  fi
fi
(cd "$WORK/xml" && tar -czf "$OUT/gtest_xml.tar.gz" .) 2>>"$LOG"

# ------------------------------------------------------------------- yolopipe run: CUDA pipeline
# The pipeline executor with CUDA stages (one GPU: two stages share it): same batch in single,
# pipeline and data mode; img/s lines go to the summary (runtime/pipeline/pipeline_cuda_test checks
# the outputs against the CPU).
say ""
say "## yolopipe run on CUDA stages (yolov8n, batch 32, micro-batch 8)"
for spec in "single cuda:0" "pipeline cuda:0,0" "data cuda:0,0"; do
  t=$(allowance 60 "$PIPE_END")
  if [ "$t" -lt 10 ]; then problem "run --mode ${spec%% *} not run: out of time"; continue; fi
  LD_LIBRARY_PATH=$YP_LD timeout -k 5 "$t" "$YP" run --model yolov8n --batch 32 --microbatch 8 \
    --mode "${spec%% *}" --devices "${spec#* }" --repeats 5 --warmup 1 </dev/null \
    >"$WORK/run.out" 2>&1
  rc=$?
  { echo "----- run --mode ${spec%% *} --devices ${spec#* } (exit $rc)"; cat "$WORK/run.out"; } >>"$LOG"
  if [ "$rc" = 0 ]; then
    say "  ${spec}: $(grep -m1 'img/s' "$WORK/run.out")"
  else
    problem "run --mode ${spec%% *} --devices ${spec#* }: exit $rc: $(grep . "$WORK/run.out" | tail -1)"
  fi
done

# ------------------------------------------------------ MPI: CUDA stages in separate processes
# The bundle's relocatable OpenMPI (tools/gpu_check.sh): one pipeline stage per rank, all on the
# one GPU; rank 0's output against one process's (single mode, same micro-batch). Three runs:
# 2 ranks passing host tensors over MPI, then 2 and 4 ranks passing them over NCCL (--nccl), device
# to device, each rank with its own NCCL_HOSTID and NCCL_SOCKET_IFNAME=lo (ENVIRONMENT.md).
say ""
say "## MPI: one process per CUDA stage (yolov8n, batch 8, micro-batch 2)"
o=$BUNDLE/ompi
MPI_DEVICE=${MPI_DEVICE:-cuda:0}
# Compares two .npy outputs: prints "bitwise equal" or the largest differences; exit 0 when equal
# or within fp16 noise (boxes 1 px, scores 0.01), 3 beyond it, 1 when they cannot be compared.
compare_npy() {
  if cmp -s "$1" "$2"; then echo "bitwise equal"; return 0; fi
  "$PY" -c "
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
if a.shape != b.shape:
    print('shapes differ: %s vs %s' % (a.shape, b.shape)); sys.exit(3)
d = np.abs(a.astype(np.float64) - b)
boxes, scores = d[:, :4].max(), d[:, 4:].max()
print('max |diff| %.3g (boxes %.3g, scores %.3g)' % (d.max(), boxes, scores))
sys.exit(0 if boxes <= 1.0 and scores <= 0.01 else 3)" "$1" "$2" 2>&1 | tail -1
  return "${PIPESTATUS[0]}"
}
# mpi_case NP LABEL [run flags...]
mpi_case() {
  local np=$1 label=$2
  shift 2
  local t
  t=$(allowance 120 "$PIPE_END")
  if [ "$t" -lt 20 ]; then problem "MPI $label not run: out of time"; return; fi
  LD_LIBRARY_PATH=$YP_LD OPAL_PREFIX=$o OPAL_LIBDIR=$o/lib/x86_64-linux-gnu/openmpi/lib \
    OPAL_PKGDATADIR=$o/share/openmpi OPAL_SYSCONFDIR=$o/etc OMPI_MCA_plm=isolated \
    OMPI_ALLOW_RUN_AS_ROOT=1 NCCL_SOCKET_IFNAME=lo NCCL_DEBUG=WARN \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -k 5 "$t" "$o/bin/mpirun" --oversubscribe -np "$np" \
    sh -c 'NCCL_HOSTID=yolopipe-rank-$OMPI_COMM_WORLD_RANK exec "$0" "$@"' \
    "$YP" run --model yolov8n --batch 8 --microbatch 2 --mode pipeline --devices "$MPI_DEVICE" \
    --output "$WORK/mpi_$np$label.npy" "$@" </dev/null >"$WORK/mpi_$np$label.out" 2>&1
  local rc=$?
  { echo "----- mpirun -np $np run --mode pipeline $MPI_DEVICE $* (exit $rc)"
    cat "$WORK/mpi_$np$label.out"; } >>"$LOG"
  if [ "$rc" = 0 ]; then
    local result cmp_rc
    result=$(compare_npy "$WORK/single.npy" "$WORK/mpi_$np$label.npy")
    cmp_rc=$?
    say "  mpirun -np $np pipeline $label vs one process: $result; $(grep -m1 'img/s' "$WORK/mpi_$np$label.out")"
    if [ "$cmp_rc" = 3 ]; then
      problem "MPI $np ranks $label: outputs differ from one process's beyond fp16 noise: $result"
    elif [ "$cmp_rc" != 0 ]; then
      problem "MPI $np ranks $label: could not compare the outputs: $result"
    fi
  else
    problem "MPI $np ranks $label: exit $rc: $(grep . "$WORK/mpi_$np$label.out" | tail -1)"
  fi
}
if [ ! -x "$o/bin/mpirun" ]; then
  problem "the bundle has no mpirun: the MPI runs were skipped"
else
  t=$(allowance 60 "$PIPE_END")
  LD_LIBRARY_PATH=$YP_LD timeout -k 5 "$t" "$YP" run --model yolov8n --batch 8 --microbatch 2 \
    --devices "$MPI_DEVICE" --output "$WORK/single.npy" </dev/null >"$WORK/mpi_single.out" 2>&1
  rc1=$?
  { echo "----- run single $MPI_DEVICE (exit $rc1)"; cat "$WORK/mpi_single.out"; } >>"$LOG"
  if [ "$rc1" != 0 ]; then
    problem "MPI runs skipped: the one-process run failed: $(grep . "$WORK/mpi_single.out" | tail -1)"
  else
    mpi_case 2 host
    # --nccl needs CUDA stages: the CPU plumbing run (MPI_DEVICE=cpu) stops at the host case.
    if [ "${MPI_DEVICE%%:*}" = cuda ]; then
      mpi_case 2 nccl --nccl
      mpi_case 4 nccl --nccl
    fi
  fi
fi

# --------------------------------------------------------------------------------- yolopipe bench
say ""
say "## yolopipe bench"
: >"$OUT/bench.txt"
help=$(LD_LIBRARY_PATH=$YP_LD timeout 20 "$YP" bench --help 2>&1)
BENCH_FLAGS=()
if grep -q -- '--precision' <<<"$help"; then
  BENCH_FLAGS+=(--precision=fp16)
else
  problem "yolopipe bench has no --precision flag: ran with the CUDA executor's default precision"
fi
if grep -q -- '--cuda_graph' <<<"$help"; then
  BENCH_FLAGS+=(--cuda_graph=true)
else
  problem "yolopipe bench has no --cuda_graph flag: ran with the CUDA executor's default"
fi
say "flags: --device $BENCH_DEVICE ${BENCH_FLAGS[*]}"
# bench_case MODEL BATCH VARIANT [extra flags...]: one `yolopipe bench` run -> a bench.txt line.
bench_case() {
  local m=$1 b=$2 variant=$3 reps warm t rc line ms ips err
  shift 3
  if [ "$b" -le 1 ]; then reps=${BENCH_REPEATS_B1:-50} warm=${BENCH_WARMUP_B1:-5}
  else reps=${BENCH_REPEATS:-20} warm=${BENCH_WARMUP:-3}; fi
  t=$(allowance 75 "$BENCH_END")
  if [ "$t" -lt 5 ]; then
    [ "$variant" = default ] &&
      problem "bench yolov8$m batch $b not run: the bench share of the budget is spent"
    echo "yolopipe model=yolov8$m batch=$b variant=$variant error=\"not run: out of time\"" >>"$OUT/bench.txt"
    return
  fi
  LD_LIBRARY_PATH=$YP_LD timeout -k 5 "$t" "$YP" bench --model "yolov8$m" --batch "$b" \
    --device "$BENCH_DEVICE" "${BENCH_FLAGS[@]}" "$@" --warmup "$warm" --repeats "$reps" \
    </dev/null >"$WORK/bench.out" 2>"$WORK/bench.err"
  rc=$?
  { echo "----- bench yolov8$m batch $b $variant (exit $rc)"; cat "$WORK/bench.out"
    tr '\r' '\n' <"$WORK/bench.err"; } >>"$LOG"
  line=$(grep 'ms/batch' "$WORK/bench.out" | tail -1)
  if [ "$rc" = 0 ] && [ -n "$line" ]; then
    ms=$(sed -E 's/.*median ([0-9.]+) ms\/batch.*/\1/' <<<"$line")
    ips=$(sed -E 's/.*median [0-9.]+ ms\/batch \(([0-9.]+) img\/s.*/\1/' <<<"$line")
    echo "yolopipe model=yolov8$m batch=$b variant=$variant ms=$ms img_s=$ips" >>"$OUT/bench.txt"
    say "  yolov8$m batch $b ($variant): $ms ms/batch, $ips img/s"
  else
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then err="timed out after $t s"
    else err="exit $rc: $(tr '\r' '\n' <"$WORK/bench.err" | grep -v '^ *run ' | grep . | tail -1)"; fi
    err=${err//\"/\'}
    echo "yolopipe model=yolov8$m batch=$b variant=$variant error=\"$err\"" >>"$OUT/bench.txt"
    problem "bench yolov8$m batch $b ($variant): $err"
  fi
}
for m in $MODELS; do
  for b in $BATCHES; do bench_case "$m" "$b" default; done
done
# The issue asks which epilogue is faster: cuDNN's runtime fusion or our kernel. With time left in
# the bench share, a few cases run again with --cudnn_fusion (FUSION_CASES="model:batch ...").
if grep -q -- '--cudnn_fusion' <<<"$help"; then
  for mb in ${FUSION_CASES-"n:1 n:32 x:32"}; do
    bench_case "${mb%%:*}" "${mb#*:}" cudnn_fusion --cudnn_fusion=true
  done
fi

# ------------------------------------------------------------------------------ PyTorch baseline
say ""
say "## PyTorch baseline (tools/torch_gpu_baseline.py)"
t=$(allowance 400 "$TORCH_END")
if [ "$t" -lt 20 ]; then
  problem "PyTorch baseline not run: out of time"
  : >"$OUT/torch.txt"
else
  (cd "$BUNDLE/tools" && LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH PYTHONUNBUFFERED=1 \
     timeout -k 5 "$t" "$PY" torch_gpu_baseline.py --models "$(csv "$MODELS")" \
     --batches "$(csv "$BATCHES")" --iters "${TORCH_ITERS:-20}" --repeats "${TORCH_REPEATS:-5}" \
     ${TORCH_BASELINE_ARGS:+"$TORCH_BASELINE_ARGS"}) \
    >"$OUT/torch.txt" 2>"$WORK/torch.err"
  rc=$?
  { echo "----- PyTorch baseline (exit $rc)"; cat "$OUT/torch.txt" "$WORK/torch.err"; } >>"$LOG"
  sed 's/^torch_gpu_baseline /  /' "$OUT/torch.txt"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then problem "PyTorch baseline timed out after $t s"
  elif [ "$rc" != 0 ]; then problem "PyTorch baseline exit $rc: $(tail -1 "$WORK/torch.err")"; fi
fi

# ---------------------------------------------------------------------------------------- summary
say ""
state=$(timeout 20 nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw,memory.used \
          --format=csv,noheader 2>&1 | head -1)
{
  echo "# yolopipe GPU check"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(elapsed) s of a ${BUDGET_S} s budget. $(grep '^gpu:' "$LOG" | head -1)"
  grep -E '^(host|torch |yolopipe resolves)' "$LOG" | sed 's/^/- /'
  echo "- bundle: $(sed -n 's/^built: //p' "$BUNDLE/MANIFEST.txt")"
  echo "- GPU state after the runs (clocks.sm, temperature, power, memory used): $state"
  echo
  echo "## GPU tests (cases that skipped on the build machine)"
  echo
  echo "| test | result | details |"
  echo "|---|---|---|"
  printf '%s\n' "${TEST_ROWS[@]}"
  echo
  echo "## Throughput and latency: yolopipe vs PyTorch, same machine, same command"
  echo
} >"$SUMMARY"
"$PY" - "$OUT/bench.txt" "$OUT/torch.txt" "--device $BENCH_DEVICE ${BENCH_FLAGS[*]}" >>"$SUMMARY" 2>>"$LOG" <<'PYEOF' ||
import shlex
import sys

def parse(path, prefix):
    rows = {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return rows
    for line in lines:
        if not line.startswith(prefix + " "):
            continue
        kv = dict(tok.split("=", 1) for tok in shlex.split(line)[1:] if "=" in tok)
        rows[(kv.get("model"), int(kv.get("batch", 0)), kv.get("variant", "default"))] = kv
    return rows

bench = parse(sys.argv[1], "yolopipe")
yp = {k[:2]: v for k, v in bench.items() if k[2] == "default"}
fusion = {k[:2]: v for k, v in bench.items() if k[2] == "cudnn_fusion"}
pt = {k[:2]: v for k, v in parse(sys.argv[2], "torch_gpu_baseline").items()}
flags = sys.argv[3]
# The issue's targets: batch 32 throughput vs PyTorch's CUDA-graph throughput; batch-1 latency.
ratio_targets = {("yolov8n", 32): 1.3, ("yolov8s", 32): 1.3, ("yolov8x", 32): 1.1}
latency_targets = {("yolov8n", 1): 0.8}

def num(d, k):
    try:
        return float(d[k])
    except (KeyError, TypeError, ValueError):
        return None

def f(x, p=2):
    return "—" if x is None else f"{x:,.{p}f}"

print("| model | batch | yolopipe ms/batch | yolopipe img/s | PyTorch graph ms/batch | "
      "PyTorch graph img/s | **ratio** (yolopipe/PyTorch img/s) | PyTorch e2e ms/batch | "
      "ratio vs e2e | target |")
print("|---|---|---|---|---|---|---|---|---|---|")
keys = sorted(set(yp) | set(pt), key=lambda k: ("nsmlx".find(str(k[0])[-1:]), k[1]))
notes = []
for key in keys:
    y, p = yp.get(key, {}), pt.get(key, {})
    y_ms, y_ips = num(y, "ms"), num(y, "img_s")
    p_ms, p_ips, p_e2e = num(p, "ms"), num(p, "img_s"), num(p, "e2e_ms")
    ratio = y_ips / p_ips if y_ips and p_ips else None
    ratio_e2e = p_e2e / y_ms if y_ms and p_e2e else None
    target = ""
    if key in ratio_targets:
        want = ratio_targets[key]
        target = f"≥ {want}×: " + ("n/a" if ratio is None else "met" if ratio >= want else "MISSED")
    if key in latency_targets:
        want = latency_targets[key]
        target = f"≤ {want} ms: " + ("n/a" if y_ms is None else "met" if y_ms <= want else "MISSED")
    print(f"| {key[0]} | {key[1]} | {f(y_ms, 3)} | {f(y_ips, 1)} | {f(p_ms, 3)} | {f(p_ips, 1)} | "
          f"**{f(ratio)}** | {f(p_e2e, 3)} | {f(ratio_e2e)} | {target} |")
    for side, d in (("yolopipe", y), ("PyTorch", p)):
        if "error" in d:
            notes.append(f"- {side} {key[0]} batch {key[1]}: {d['error']}")
print()
print("- yolopipe: `yolopipe bench " + flags + "`, median wall time of "
      "Session::Run per batch: fp32 NCHW host input in, fp32 host output out (so it includes the "
      "host-device copies and the synchronisation).")
print("- PyTorch graph: tools/torch_reference.py's YOLOv8 (same architecture, seeded weights) in "
      "fp16, channels_last, cudnn.benchmark, CUDA-graph replay on a static GPU input, CUDA-event "
      "timing (BASELINES.md's method); the issue's throughput targets are against this column.")
print("- PyTorch e2e: the same graph plus the pinned-host fp32 input copy and the fp32 output "
      "copy back, i.e. what yolopipe's figure includes; 'ratio vs e2e' = PyTorch e2e ms / yolopipe ms.")
print("- batch-1 latency = the batch-1 ms/batch columns.")
if fusion:
    print()
    print("Epilogue: our fused epilogue kernel (default) vs cuDNN runtime fusion (--cudnn_fusion):")
    print()
    print("| model | batch | our epilogue ms/batch | cuDNN fusion ms/batch | fusion / ours |")
    print("|---|---|---|---|---|")
    for key in sorted(fusion, key=lambda k: ("nsmlx".find(str(k[0])[-1:]), k[1])):
        ours, fus = num(yp.get(key, {}), "ms"), num(fusion[key], "ms")
        rel = fus / ours if ours and fus else None
        print(f"| {key[0]} | {key[1]} | {f(ours, 3)} | {f(fus, 3)} | {f(rel)} |")
        if "error" in fusion[key]:
            notes.append(f"- yolopipe --cudnn_fusion {key[0]} batch {key[1]}: {fusion[key]['error']}")
if notes:
    print()
    print("Failures:")
    print("\n".join(notes))
PYEOF
  { echo "(summary table failed; raw lines follow)"; cat "$OUT/bench.txt" "$OUT/torch.txt"; } >>"$SUMMARY"
{
  echo
  echo "## Problems"
  echo
  if [ "${#PROBLEMS[@]}" = 0 ]; then echo "none"; else printf -- '- %s\n' "${PROBLEMS[@]}"; fi
} >>"$SUMMARY"
echo "=================================================================================" 
cat "$SUMMARY"
cat "$SUMMARY" >>"$LOG"
rm -rf "$WORK"
[ "${#PROBLEMS[@]}" = 0 ]
