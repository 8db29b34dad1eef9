#!/usr/bin/env bash
# Installs every Debian package that yolopipe's build and tests need, skipping those present.
# Idempotent: a second run installs nothing. Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap          # Bazel 4.2.3 (WORKSPACE mode, offline)
  g++
  libabsl-dev              # status, strings, synchronization
  libprotobuf-dev protobuf-compiler
  libonnx-dev              # ONNX protos, checker, shape inference
  libdnnl-dev              # oneDNN: CPU convolutions
  libgtest-dev libgmock-dev libbenchmark-dev
  libstb-dev               # image decoding/encoding
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev   # video (yolopipe stream)
  libavdevice-dev          # cameras and other capture devices as stream sources
  libopenmpi-dev openmpi-bin   # multi-process launch (mpirun) and the CPU transport
  clang-14 libclang-rt-14-dev  # libFuzzer targets (fuzz/, --config=fuzz)
  python3 python3-numpy python3-onnx python3-torch   # independent reference and fixtures
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
echo "setup: done"
