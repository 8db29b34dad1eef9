#!/usr/bin/env bash
# GPU check, part 1 (runs HERE, on the build machine without a GPU): builds the CUDA configuration of
# the yolopipe CLI and of the GPU tests (without video support, --define=video=off: FFmpeg and what
# it loads would take the bundle past the 64 MiB the device accepts), and bundles the binaries with the non-system shared libraries
# they load, so that tools/gpu_check_remote.sh can run them on a GPU machine that has no Bazel, no
# Debian packages and no network.
#
# usage: tools/gpu_check.sh [--no-build] [--with-data]
#   --no-build   bundle what the last --config=cuda build left (no bazel build)
#   --with-data  bundle every runfiles data file; by default files over DATA_FILE_MAX_MIB (4) are
#                left out: the device transfer limit is 64 MiB, and the test cases that read the big
#                fixtures (ONNX files, .npy) are host-only ones, which run and pass here already
#   JOBS=N       bazel --jobs (default 1: the build machine is shared)
#   STRICT=1     stop when a GPU test does not build (default: leave it out, say so, go on;
#                //tools:yolopipe must always build)
#
# Output (all under .gpu_bundle/, which .gitignore already ignores):
#   .gpu_bundle/stage/                    the bundle as a tree (what the tarball holds)
#     bin/<pkg>/<test>, bin/tools/yolopipe  binaries, at their bazel-bin paths
#     bin/<pkg>/<test>.runfiles/            data files of tests that have any
#     bin/_solib_k8/                        the bazel-built .so files the binaries link against
#     lib/                                  Debian shared libraries (Abseil, protobuf, onnx, dnnl, gomp...)
#     lib_compat/                           Debian's libstdc++/libgcc_s, used there only if the GPU
#                                           machine's own are too old (the remote script decides)
#     ompi/                                 OpenMPI (mpirun, components, help texts), relocatable
#     tools/torch_gpu_baseline.py, tools/torch_reference.py
#     tests.txt                             test binaries
#     gpu_cases.txt                         per binary, the gtest filter of the cases that need a GPU:
#                                           those that SKIPPED in the check here (the rest passed here)
#     MANIFEST.txt                          how and from what it was built, what was left out
#   .gpu_bundle/yolopipe_gpu_bundle.tar.gz  the bundle, compressed: the one path to carry
# Before packing, it checks the bundle: in a private mount namespace whose system library directory
# holds only glibc, libstdc++ and libgcc_s, every bundled test binary and `yolopipe bench` (CPU) must
# run with LD_LIBRARY_PATH naming only the bundle (and the toolkit's cudart). Then it prints the
# bundle's size and the exact device call to make.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
all_data=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --with-data) all_data=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
JOBS=${JOBS:-1}
DATA_FILE_MAX_MIB=${DATA_FILE_MAX_MIB:-4}
DEST=.gpu_bundle
STAGE=$DEST/stage
TARBALL=$DEST/yolopipe_gpu_bundle.tar.gz
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}

log() { echo "gpu_check: $*" >&2; }
die() { echo "gpu_check: error: $*" >&2; exit 1; }

# Shared libraries that must come from the GPU machine, by file name: the C/C++ runtime and glibc
# (always present there, and a bundled glibc would not match its loader) and the CUDA driver and
# libraries (the PyTorch venv's cuDNN/NCCL and the machine's driver are the ones to use).
SYSTEM_LIBS='^(linux-vdso\.so|ld-linux[-a-z0-9_]*\.so|libc\.so|libm\.so|libmvec\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libstdc\+\+\.so|libgcc_s\.so|libcuda\.so|libcudart\.so|libcudnn[a-z_]*\.so|libnccl\.so|libnvidia-)'

# ---------------------------------------------------------------------------------------- targets
# The GPU tests: every test under ops/cuda and runtime/cuda, and any other test under runtime/
# whose name or tags mention cuda or gpu.
QUERY="tests(//ops/cuda/... + //runtime/cuda/...)"
QUERY+=" + attr(tags, 'cuda|gpu', tests(//runtime/...))"
QUERY+=" + filter('cuda|gpu', tests(//runtime/...))"
mapfile -t TESTS < <(bazel query "$QUERY" 2>/dev/null | grep '^//' | sort -u)
[ "${#TESTS[@]}" -gt 0 ] || die "bazel query found no GPU tests: $QUERY"
log "${#TESTS[@]} GPU test targets: ${TESTS[*]}"
# The multi-process NCCL test binary (a cc_binary: the remote script starts its ranks).
NCCL_RANKS=//runtime/cuda:nccl_communicator_test_ranks
TARGETS=("//tools:yolopipe" "$NCCL_RANKS" "${TESTS[@]}")
BUILD_FLAGS=(--config=cuda --define=video=off)

BUILD_FAILED=()
if [ "$build" = 1 ]; then
  log "bazel build ${BUILD_FLAGS[*]} --jobs=$JOBS --keep_going ${TARGETS[*]}"
  if ! bazel build "${BUILD_FLAGS[@]}" --jobs="$JOBS" --keep_going "${TARGETS[@]}"; then
    # Find which targets failed (one at a time: cached ones return at once), so that a test that
    # does not compile (yet) leaves the rest of the GPU check usable. Never bundle a stale binary.
    log "the CUDA build failed; checking the targets one by one"
    for t in "${TARGETS[@]}"; do
      bazel build "${BUILD_FLAGS[@]}" --jobs="$JOBS" "$t" >/dev/null 2>&1 || BUILD_FAILED+=("$t")
    done
    log "targets that do not build with --config=cuda: ${BUILD_FAILED[*]:-none}"
    for t in "${BUILD_FAILED[@]}"; do
      [ "$t" != //tools:yolopipe ] || die "//tools:yolopipe does not build with --config=cuda"
    done
    [ "${STRICT:-0}" = 0 ] || die "STRICT=1: every target must build"
  fi
fi
# The CUDA configuration's output tree; the bazel-bin symlink may point at another configuration.
BIN=$(bazel info "${BUILD_FLAGS[@]}" bazel-bin 2>/dev/null)
[ -d "$BIN" ] || die "bazel info --config=cuda bazel-bin gave '$BIN', not a directory"
BIN_REAL=$(realpath "$BIN")

# label //pkg/sub:name -> pkg/sub/name
label_path() { local l=${1#//}; echo "${l%%:*}/${l#*:}"; }

# ----------------------------------------------------------------------------------------- bundle
rm -rf "$STAGE" "$TARBALL"
mkdir -p "$STAGE/bin/_solib_k8" "$STAGE/lib" "$STAGE/lib_compat" "$STAGE/tools"
: >"$STAGE/tests.txt"

declare -A NEED_FROM_GPU_MACHINE=()
DATA_LEFT_OUT=()
copy_deps() {  # copies the shared libraries that $1 loads (ldd: transitive) into the bundle
  local bin=$1 name path line
  while read -r line; do
    # "libfoo.so.1 => /path/libfoo.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)",
    # "libbar.so => not found"
    name=${line%% *}
    name=${name##*/}
    case "$line" in
      *"=> not found"*)
        if [[ "$name" =~ $SYSTEM_LIBS ]]; then NEED_FROM_GPU_MACHINE[$name]=1; continue; fi
        die "$bin needs $name, which ldd cannot find here" ;;
      *"=> /"*) path=${line#*=> }; path=${path%% (*} ;;
      *) continue ;;
    esac
    if [[ "$name" =~ $SYSTEM_LIBS ]] || [[ "$(realpath "$path")" == "$(realpath "$CUDA_HOME")"/* ]]; then
      NEED_FROM_GPU_MACHINE[$name]=1
      continue
    fi
    local real
    real=$(realpath "$path")
    if [[ "$path" == */_solib_* ]] || [[ "$real" == "$BIN_REAL"/* ]]; then
      # Bazel-built: keep the name the binary asks for, flat in bin/_solib_k8 (the binaries'
      # $ORIGIN-relative RUNPATH finds it there, and the remote script puts it on LD_LIBRARY_PATH).
      [ -e "$STAGE/bin/_solib_k8/$name" ] || cp -L "$path" "$STAGE/bin/_solib_k8/$name"
    else
      [ -e "$STAGE/lib/$name" ] || cp -L "$path" "$STAGE/lib/$name"
    fi
  done < <(ldd "$bin")
}

copy_binary() {  # copy_binary pkg/name
  local rel=$1 src="$BIN/$1" dst="$STAGE/bin/$1"
  [ -x "$src" ] || die "$src is missing (did the CUDA build run? try without --no-build)"
  mkdir -p "$(dirname "$dst")"
  cp -L "$src" "$dst"
  chmod u+w "$dst"
  copy_deps "$src"
  # Data files of the test (fixtures, exported models...): everything in its runfiles except the
  # shared libraries (bundled above), the binary itself and Bazel's manifest.
  if [ -d "$src.runfiles" ]; then
    local data=()
    mapfile -t data < <(cd "$src.runfiles" && find -L . -type f ! -path '*/_solib_*' \
                          ! -name MANIFEST ! -path "./*/$rel" ! -name '*.so' ! -name '*.so.*' | sort)
    local keep=() f
    for f in "${data[@]}"; do
      if [ "$all_data" = 1 ] ||
         [ "$(stat -L -c %s "$src.runfiles/$f")" -le $((DATA_FILE_MAX_MIB * 1048576)) ]; then
        keep+=("$f")
      else
        DATA_LEFT_OUT+=("$rel.runfiles/${f#./}")
      fi
    done
    if [ "${#keep[@]}" -gt 0 ]; then
      mkdir -p "$dst.runfiles"
      (cd "$src.runfiles" && tar -chf - -- "${keep[@]}") | tar -C "$dst.runfiles" -xf -
    fi
    [ "${#data[@]}" = 0 ] || log "$rel: ${#data[@]} runfiles data file(s), ${#keep[@]} bundled"
  fi
}

copy_binary tools/yolopipe
if [[ " ${BUILD_FAILED[*]} " == *" $NCCL_RANKS "* ]]; then
  log "WARNING: $NCCL_RANKS did not build: the NCCL rank check will be skipped"
else
  copy_binary runtime/cuda/nccl_communicator_test_ranks
fi
for t in "${TESTS[@]}"; do
  if [[ " ${BUILD_FAILED[*]} " == *" $t "* ]]; then
    log "WARNING: $t did not build: left out of the bundle"
    continue
  fi
  rel=$(label_path "$t")
  copy_binary "$rel"
  echo "$rel" >>"$STAGE/tests.txt"
done

# OpenMPI, relocatable (the GPU machine has none): mpirun and orted, the MCA components and the
# libraries they load, the help texts and the default MCA parameters, laid out as under /usr so
# that OPAL_PREFIX finds them (tools/gpu_check_remote.sh sets it). Components for InfiniBand, UCX,
# OFI and PSM are left out: a one-GPU machine has no such fabric, and their libraries would
# double the bundle; OpenMPI simply does not see them.
OMPI_COMPONENTS=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
if command -v orterun >/dev/null 2>&1 && [ -d "$OMPI_COMPONENTS" ]; then
  ompi=$STAGE/ompi
  mkdir -p "$ompi/bin" "$ompi/lib/x86_64-linux-gnu/openmpi/lib/openmpi3" "$ompi/share" "$ompi/etc"
  cp -L "$(command -v orterun)" "$ompi/bin/mpirun"
  cp -L "$(command -v orted)" "$ompi/bin/orted"
  copy_deps "$ompi/bin/mpirun"
  copy_deps "$ompi/bin/orted"
  for so in "$OMPI_COMPONENTS"/*.so; do
    case $(basename "$so") in *ucx* | *ofi* | *psm* | *openib* | *verbs*) continue ;; esac
    cp -L "$so" "$ompi/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/"
    copy_deps "$so"
  done
  cp -r /usr/share/openmpi "$ompi/share/"
  cp /etc/openmpi/openmpi-mca-params.conf "$ompi/etc/"
else
  log "WARNING: no OpenMPI here: the bundle has no mpirun (the remote MPI runs will be skipped)"
fi

# Fallback C++ runtime (see lib_compat above): Debian 12's, which the binaries were linked against.
for name in libstdc++.so.6 libgcc_s.so.1; do
  path=$(ldconfig -p | awk -v n="$name" '$1 == n && /x86-64/ && !found { print $NF; found = 1 }')
  [ -n "$path" ] && cp -L "$path" "$STAGE/lib_compat/$name"
done

# The runfiles tree's top directory (tests run from there, as under bazel test).
sed -n 's/^workspace(name = "\([^"]*\)").*/\1/p' WORKSPACE >"$STAGE/workspace.txt"
[ -s "$STAGE/workspace.txt" ] || die "no workspace(name = ...) in WORKSPACE"
cp tools/torch_gpu_baseline.py tools/torch_reference.py "$STAGE/tools/"
[ -f tools/gpu_check_remote.sh ] && cp tools/gpu_check_remote.sh "$STAGE/tools/"

# Newest glibc / libstdc++ symbol versions any bundled file needs: the remote script checks them.
symbol_versions() {  # newest $1_x.y symbol version that the bundled ELF files need
  find "$STAGE/bin" "$STAGE/lib" -type f ! -path '*.runfiles/*' -exec objdump -T {} + 2>/dev/null |
    grep -o "$1_[0-9.]*" | sort -uV | tail -1 || true
}
glibc_need=$(symbol_versions GLIBC)
glibcxx_need=$(symbol_versions GLIBCXX)
{
  echo "yolopipe GPU bundle"
  echo "built: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname) ($(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"'))"
  echo "bazel-bin: $BIN"
  echo "targets: ${TARGETS[*]}"
  echo "build_failed: ${BUILD_FAILED[*]}"
  echo "data_left_out (over ${DATA_FILE_MAX_MIB} MiB; --with-data bundles them): ${DATA_LEFT_OUT[*]}"
  echo "nvcc: $("$CUDA_HOME/bin/nvcc" --version 2>/dev/null | grep -o 'release [0-9.]*, V[0-9.]*' || echo unknown)"
  echo "needs_glibc: ${glibc_need:-none}"
  echo "needs_glibcxx: ${glibcxx_need:-none}"
  echo "from_gpu_machine: ${!NEED_FROM_GPU_MACHINE[*]}"
  echo "bundled_libs: $(cd "$STAGE/lib" && printf '%s ' *)"
  echo "bazel_libs: $(cd "$STAGE/bin/_solib_k8" && printf '%s ' *)"
} >"$STAGE/MANIFEST.txt"

# ----------------------------------------------------------------------------------------- verify
# Every bundled binary must load with the bundled libraries alone. In a private mount namespace the
# system library directory is replaced by one holding only the libraries the GPU machine provides
# (glibc, libstdc++, libgcc_s); the CUDA toolkit's cudart stands in for the GPU machine's. Then
# the tests run (their GPU cases skip here) and the CLI runs a small CPU benchmark.
verify_bundle() {
  local stage_abs sys_dir results f
  stage_abs=$(realpath "$STAGE")
  sys_dir=$(dirname "$(realpath "$(ldconfig -p | awk '$1 == "libc.so.6" && /x86-64/ && !found { print $NF; found = 1 }')")")
  local keep=()
  for f in "$sys_dir"/*; do
    [[ "$(basename "$f")" =~ $SYSTEM_LIBS ]] && keep+=("$f")
  done
  local libpath="$stage_abs/lib:$stage_abs/bin/_solib_k8:$CUDA_HOME/lib64"
  results=$(mktemp -d)
  # Inside the namespace, once the library directory is replaced, only bash builtins and
  # /usr/bin/env (glibc alone) can run: results go to files, and are read afterwards.
  # shellcheck disable=SC2016  # expanded by the inner shell, inside the namespace
  local script='
    set -e
    target=$1 results=$2; shift 2
    if [ "$ISOLATE" = 1 ]; then
      # The system OpenMPI'"'"'s help texts and parameters are hidden too, so the bundled mpirun
      # must find its own (before the library directory goes: mount needs libmount).
      empty=$(mktemp -d)
      for d in /usr/share/openmpi /etc/openmpi; do [ -d "$d" ] && mount --bind "$empty" "$d"; done
      iso=$(mktemp -d)
      mount -t tmpfs tmpfs "$iso"
      cp -a "$@" "$iso"/
      mount --bind "$iso" "$target"
    fi
    set +e
    echo "$(cd "$target" && echo *)" >"$results/libdir"
    cd "$STAGE_ABS"
    i=0
    while read -r t; do
      i=$((i + 1))
      echo "$t" >"$results/$i.name"
      # As bazel test runs it: from its runfiles tree, which holds its data files (bazel-bin'"'"'s,
      # which has them all; the bundle may leave big ones out).
      rf="$BIN/$t.runfiles"
      wd="$rf/$WORKSPACE_NAME"
      [ -d "$wd" ] || wd="$STAGE_ABS"
      (cd "$wd" && /usr/bin/env -i LD_LIBRARY_PATH="$LIBPATH" TEST_SRCDIR="$rf" RUNFILES_DIR="$rf" \
         TEST_WORKSPACE="$WORKSPACE_NAME" TEST_TMPDIR="$results" "$STAGE_ABS/bin/$t" \
         >"$results/$i.log" 2>&1)
      echo $? >"$results/$i.rc"
    done <tests.txt
    /usr/bin/env -i LD_LIBRARY_PATH="$LIBPATH" OMP_NUM_THREADS=1 bin/tools/yolopipe bench \
      --model yolov8n --imgsz 64 --batch 1 --repeats 1 --warmup 0 >"$results/cli.log" 2>&1
    echo $? >"$results/cli.rc"
    # The bundled OpenMPI, with the system one hidden: 2 ranks of yolopipe over MPI.
    if [ -x ompi/bin/mpirun ]; then
      o=$STAGE_ABS/ompi
      /usr/bin/env -i LD_LIBRARY_PATH="$LIBPATH" OPAL_PREFIX="$o" \
        OPAL_LIBDIR="$o/lib/x86_64-linux-gnu/openmpi/lib" OPAL_PKGDATADIR="$o/share/openmpi" \
        OPAL_SYSCONFDIR="$o/etc" PATH="$o/bin" OMPI_MCA_plm=isolated OMPI_ALLOW_RUN_AS_ROOT=1 \
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "$o/bin/mpirun" --oversubscribe -np 2 \
        "$STAGE_ABS/bin/tools/yolopipe" profile-link --sizes 4K,64K --repeats 2 --warmup 0 \
        >"$results/mpi.log" 2>&1
      echo $? >"$results/mpi.rc"
    fi
  '
  local isolate=1 runner=(unshare -m --propagation private)
  if ! unshare -m --propagation private true 2>/dev/null; then
    log "unshare -m is not permitted here: checking the libraries with ldd instead (weaker)"
    isolate=0 runner=()
    local bad=0
    while read -r f; do
      if env -i LD_LIBRARY_PATH="$libpath" ldd "$f" | grep '=> /' | grep -v "$stage_abs" |
           awk '{ print $1 }' | grep -Ev "$SYSTEM_LIBS"; then
        log "$f loads the above from outside the bundle"; bad=1
      fi
    done < <(find "$stage_abs/bin" -type f -perm -u+x ! -path '*.runfiles/*')
    [ "$bad" = 0 ] || return 1
  else
    log "verifying: the bundled binaries run with only the bundled libraries, glibc, libstdc++ and cudart"
  fi
  STAGE_ABS="$stage_abs" LIBPATH="$libpath" WORKSPACE_NAME="$(cat "$STAGE/workspace.txt")" \
    BIN="$BIN" ISOLATE="$isolate" "${runner[@]}" \
    bash -c "$script" verify "$sys_dir" "$results" "${keep[@]}" ||
    { log "could not set up the isolated library directory"; return 1; }
  [ "$isolate" = 0 ] || log "system library directory during the check held only: $(cat "$results/libdir")"
  local fail=0 i=1
  while [ -f "$results/$i.rc" ]; do
    local name rc
    name=$(cat "$results/$i.name") rc=$(cat "$results/$i.rc")
    if [ "$rc" = 0 ]; then
      local passed skipped
      passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$results/$i.log")
      skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$results/$i.log")
      log "  ok    $name (${passed:-0} passed, ${skipped:-0} skipped: they need a GPU)"
    else
      log "  FAIL  $name (exit $rc)"; sed 's/^/        /' "$results/$i.log" | tail -20 >&2; fail=1
    fi
    i=$((i + 1))
  done
  # The cases that skipped here need a GPU: the remote script runs those (the others passed here,
  # and some of them read data files that the bundle leaves out).
  : >"$STAGE/gpu_cases.txt"
  i=1
  while [ -f "$results/$i.rc" ]; do
    local cases
    cases=$(sed -n 's/^\[  SKIPPED \] \([^ ]*\) ([0-9]* ms)$/\1/p' "$results/$i.log" | sort -u |
            paste -sd: -)
    echo "$(cat "$results/$i.name") ${cases:--}" >>"$STAGE/gpu_cases.txt"
    i=$((i + 1))
  done
  if [ "$(cat "$results/cli.rc")" = 0 ]; then
    log "  ok    tools/yolopipe bench on cpu: $(tail -1 "$results/cli.log")"
  else
    log "  FAIL  tools/yolopipe bench on cpu"; tail -5 "$results/cli.log" >&2; fail=1
  fi
  if [ -f "$results/mpi.rc" ]; then
    if [ "$(cat "$results/mpi.rc")" = 0 ]; then
      log "  ok    bundled mpirun, 2 ranks of yolopipe profile-link: $(grep -m1 '^fit:' "$results/mpi.log")"
    else
      log "  FAIL  bundled mpirun"; tail -15 "$results/mpi.log" >&2; fail=1
    fi
  fi
  rm -rf "$results"
  return $fail
}
verify_bundle || die "the bundle does not run on its own libraries (see above)"

# ----------------------------------------------------------------------------------------- pack
tar -C "$STAGE" -czf "$TARBALL" .
raw=$(du -sb "$STAGE" | cut -f1)
packed=$(stat -c %s "$TARBALL")
tree=$(git ls-files -co --exclude-standard -z 2>/dev/null | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
log "bundle: $(mib "$raw") unpacked, $(mib "$packed") as $TARBALL"
log "working tree that travels besides it: $(mib "${tree:-0}") (the device limit is 64 MiB in all)"
[ $((packed + ${tree:-0})) -lt $((48 * 1048576)) ] ||
  log "WARNING: bundle + tree exceed 48 MiB; the transfer limit is 64 MiB"
cat <<EOF

Device call (one command, about 8 minutes; writes summary.md, gpu_check.log, bench.txt, torch.txt
and gtest_xml.tar.gz under \$OUT):
  run(command="bash tools/gpu_check_remote.sh",
      carry=["$TARBALL"],
      timeout_s=600)
EOF
