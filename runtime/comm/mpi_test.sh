#!/usr/bin/env bash
# Runs an MPI test binary as N ranks on this machine: mpi_test.sh N BINARY [ARGS...].
# Used by the MPI cc_test wrappers (sh_test). Works as root and in Bazel's sandbox.
set -euo pipefail
ranks=$1
binary=$2
shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TMPDIR="${TEST_TMPDIR:-${TMPDIR:-/tmp}}"
# Under --config=asan: OpenMPI keeps its internal allocations until exit by design, which
# LeakSanitizer would report on every rank; leak checking is off for MPI ranks only (address and
# undefined-behaviour checks stay on).
if [ -n "${ASAN_OPTIONS:-}" ]; then export ASAN_OPTIONS="${ASAN_OPTIONS}:detect_leaks=0"; fi
# Loopback TCP and shared memory only: no network interfaces needed.
exec mpirun --oversubscribe -np "$ranks" --mca btl self,vader,tcp --mca btl_tcp_if_include lo \
  --mca oob_tcp_if_include lo -x XML_OUTPUT_FILE -x TEST_TMPDIR ${ASAN_OPTIONS:+-x ASAN_OPTIONS} \
  "$binary" "$@"
