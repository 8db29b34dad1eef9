#!/usr/bin/env bash
# Multi-process pipeline under mpirun (one rank per stage, CPU ranks, MPI transport):
#   1. 3 ranks, pipeline mode: output byte-for-byte equal to `single` on the same input;
#   2. 4 ranks, hybrid 2x2: the same;
#   3. a rank killed with SIGKILL mid-stream: the job ends within 60 s, non-zero, the
#      launcher's message names the dead rank, and the survivors say which rank and stage they were;
#   4. a bad plan: every rank stops with an "error: rank N: ..." message and a non-zero exit;
#   5. profile-link over MPI between ranks 0 and 1, and a plan priced with it;
#   6. detect over 3 ranks (pipeline) and stream over 4 ranks (hybrid 2x2): the same detections as
#      one process, a corrupt image skipped by name;
#   7. rank 0 failing before the pipeline exists (an --out it cannot create): the job ends at once
#      with rank 0's error instead of leaving the other ranks waiting.
set -uo pipefail
yolopipe="$1"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TMPDIR="$tmp"
mpirun_args=(--oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo
             --mca oob_tcp_if_include lo)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

run_args=(--imgsz 64 --batch 5 --microbatch 2 --input_seed 11)
"$yolopipe" run --mode single "${run_args[@]}" --output "$tmp/single.npy" > "$tmp/single.log" 2>&1 \
  || fail "single run: $(cat "$tmp/single.log")"

# 1. Pipeline over 3 ranks.
if timeout 300 mpirun "${mpirun_args[@]}" -np 3 "$yolopipe" run --mode pipeline --devices cpu:3 \
    "${run_args[@]}" --output "$tmp/pipeline.npy" > "$tmp/pipeline.log" 2>&1; then
  cmp -s "$tmp/single.npy" "$tmp/pipeline.npy" || fail "3-rank pipeline output differs from single"
  grep -q "3 stage(s)" "$tmp/pipeline.log" || fail "3-rank pipeline did not run 3 stages"
else
  fail "3-rank pipeline run: $(tail -5 "$tmp/pipeline.log")"
fi

# 2. Hybrid 2 x 2 over 4 ranks.
if timeout 300 mpirun "${mpirun_args[@]}" -np 4 "$yolopipe" run --mode hybrid --replicas 2 \
    --devices cpu:4 "${run_args[@]}" --output "$tmp/hybrid.npy" > "$tmp/hybrid.log" 2>&1; then
  cmp -s "$tmp/single.npy" "$tmp/hybrid.npy" || fail "4-rank hybrid output differs from single"
else
  fail "4-rank hybrid run: $(tail -5 "$tmp/hybrid.log")"
fi

# 3. Kill rank 2 mid-stream.
cat > "$tmp/rank.sh" <<WRAP
#!/usr/bin/env bash
echo \$\$ > "$tmp/rank\${OMPI_COMM_WORLD_RANK}.pid"
exec "$yolopipe" "\$@"
WRAP
chmod +x "$tmp/rank.sh"
start=$(date +%s)
timeout 120 mpirun "${mpirun_args[@]}" -np 3 "$tmp/rank.sh" run --mode pipeline --devices cpu:3 \
  --imgsz 64 --batch 2 --microbatch 1 --stream 1000000 > "$tmp/kill.log" 2>&1 &
launcher=$!
# Rank 0 prints its header once every rank has made the pipeline; then let the stream run.
for _ in $(seq 1 600); do grep -q "yolopipe run:" "$tmp/kill.log" 2>/dev/null && break; sleep 0.1; done
sleep 1
if [ -s "$tmp/rank2.pid" ]; then
  kill -9 "$(cat "$tmp/rank2.pid")"
  wait "$launcher"
  code=$?
  elapsed=$(( $(date +%s) - start ))
  [ "$code" -ne 0 ] || fail "the job exited 0 after rank 2 was killed"
  [ "$code" -ne 124 ] || fail "the job hung after rank 2 was killed (timeout)"
  grep -qi "rank 2" "$tmp/kill.log" || fail "no message names rank 2: $(tail -5 "$tmp/kill.log")"
  # The survivors say which rank and stage they were when the launcher stopped them.
  for r in 0 1; do
    grep -q "error: rank $r (stage $r): terminated by the MPI launcher" "$tmp/kill.log" ||
      fail "rank $r did not say it was stopped: $(tail -5 "$tmp/kill.log")"
  done
  echo "killed rank 2: the job ended in ${elapsed} s with exit code $code"
else
  kill "$launcher" 2>/dev/null
  fail "rank 2 never started: $(tail -5 "$tmp/kill.log")"
fi

# 4. A plan made for another model: every rank stops with an error naming itself.
cat > "$tmp/bad_plan.pbtxt" <<'PLAN'
model: "other"
model_fingerprint: "0123456789abcdef"
num_stages: 3
replicas: 1
PLAN
if timeout 120 mpirun "${mpirun_args[@]}" -np 3 "$yolopipe" run --mode pipeline --devices cpu:3 \
    --imgsz 64 --plan "$tmp/bad_plan.pbtxt" > "$tmp/bad.log" 2>&1; then
  fail "a plan for another model was accepted"
else
  grep -q "error: rank [0-9]" "$tmp/bad.log" || fail "no 'error: rank N' message: $(tail -5 "$tmp/bad.log")"
fi

# 5. profile-link over MPI feeds plan --link.
if timeout 120 mpirun "${mpirun_args[@]}" -np 2 "$yolopipe" profile-link --sizes 4K,1M,4M \
    --repeats 3 --warmup 1 -o "$tmp/link.pbtxt" > "$tmp/link.log" 2>&1; then
  grep -q "link: mpi" "$tmp/link.log" || fail "profile-link did not use MPI: $(tail -3 "$tmp/link.log")"
  "$yolopipe" profile --imgsz 64 --device cpu:2 --microbatches 1 --repeats 1 -o "$tmp/p.pbtxt" \
    > /dev/null 2>&1 || fail "profile for the link plan"
  "$yolopipe" plan --profile "$tmp/p.pbtxt" --stages 2 --link "$tmp/link.pbtxt" \
    -o "$tmp/plan.json" > "$tmp/plan.log" 2>&1 || fail "plan --link: $(tail -3 "$tmp/plan.log")"
  grep -q "measured (mpi)" "$tmp/plan.log" || fail "the plan did not use the measured link"
else
  fail "profile-link under mpirun: $(tail -15 "$tmp/link.log")"
fi

# 6. detect and stream under mpirun give one process's detections.
mkdir -p "$tmp/images" "$tmp/frames_a" "$tmp/frames_b"
python3 - "$tmp" <<'PY'
import random, struct, sys
tmp = sys.argv[1]
random.seed(7)
def bmp(path, w, h):  # 24-bit BMP, bottom-up rows padded to 4 bytes
    row = (w * 3 + 3) & ~3
    data = bytearray()
    for y in range(h):
        line = bytearray()
        for x in range(w):
            line += bytes(((x * 7 + y * 3) % 256, (x * y) % 256, random.randrange(256)))
        data += line + b"\0" * (row - w * 3)
    header = b"BM" + struct.pack("<IHHI", 54 + len(data), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(data), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(header + info + data)
for i, (w, h) in enumerate([(80, 60), (64, 64), (33, 71), (120, 45), (50, 50)]):
    bmp(f"{tmp}/images/im{i}.bmp", w, h)
for i in range(5):
    bmp(f"{tmp}/frames_a/a{i}.bmp", 72, 40)
for i in range(3):
    bmp(f"{tmp}/frames_b/b{i}.bmp", 40, 56)
PY
printf 'not an image' > "$tmp/images/broken.png"
det_args=(detect --imgsz 64 --conf 0.001 --batch 2 --image "$tmp/images")
"$yolopipe" "${det_args[@]}" --json "$tmp/det_single.json" > "$tmp/det_single.log" 2>&1 \
  || fail "detect, one process: $(tail -3 "$tmp/det_single.log")"
if timeout 120 mpirun "${mpirun_args[@]}" -np 3 "$yolopipe" "${det_args[@]}" --mode pipeline \
    --devices cpu:3 --json "$tmp/det_mpi.json" --out "$tmp/det_png" > "$tmp/det_mpi.log" 2>&1; then
  cmp -s "$tmp/det_single.json" "$tmp/det_mpi.json" || fail "detect over 3 ranks differs from one process"
  grep -q "skipping $tmp/images/broken.png" "$tmp/det_mpi.log" || fail "the corrupt image was not named"
  [ "$(ls "$tmp/det_png" | wc -l)" -eq 5 ] || fail "detect over 3 ranks did not write 5 PNGs"
  grep -q '"class_id"' "$tmp/det_mpi.json" || fail "no detections to compare; lower --conf"
else
  fail "detect over 3 ranks: $(tail -5 "$tmp/det_mpi.log")"
fi
stream_args=(stream --imgsz 64 --conf 0.001 --source "$tmp/frames_a" --source "$tmp/frames_b")
"$yolopipe" "${stream_args[@]}" --json-dir "$tmp/st_single" > "$tmp/st_single.log" 2>&1 \
  || fail "stream, one process: $(tail -3 "$tmp/st_single.log")"
if timeout 120 mpirun "${mpirun_args[@]}" -np 4 "$yolopipe" "${stream_args[@]}" --mode hybrid \
    --replicas 2 --devices cpu:4 --json-dir "$tmp/st_mpi" > "$tmp/st_mpi.log" 2>&1; then
  python3 - "$tmp" <<'PY' || fail "stream over 4 ranks differs from one process"
import json, sys
tmp = sys.argv[1]
for name, frames in (("frames_a", 5), ("frames_b", 3)):
    one = json.load(open(f"{tmp}/st_single/{name}.json"))
    mpi = json.load(open(f"{tmp}/st_mpi/{name}.json"))
    assert len(one["frames"]) == frames and mpi["complete"], name
    assert one["frames"] == mpi["frames"], name
PY
else
  fail "stream over 4 ranks: $(tail -5 "$tmp/st_mpi.log")"
fi

# 7. Rank 0 fails before the pipeline is made: no rank is left waiting for it.
start=$(date +%s)
if timeout 60 mpirun "${mpirun_args[@]}" -np 3 "$yolopipe" "${det_args[@]}" --mode pipeline \
    --devices cpu:3 --out /proc/no_such_dir > "$tmp/det_fail.log" 2>&1; then
  fail "detect with an --out it cannot create exited 0"
else
  code=$?
  [ "$code" -ne 124 ] || fail "the job hung after rank 0 failed (timeout)"
  grep -q "error: rank 0: /proc/no_such_dir: cannot create output directory" "$tmp/det_fail.log" ||
    fail "rank 0's error was not printed: $(tail -5 "$tmp/det_fail.log")"
  echo "rank 0 failing early: the job ended in $(( $(date +%s) - start )) s with exit code $code"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all MPI pipeline checks passed"
