#!/usr/bin/env bash
# Multi-process pipeline under mpirun (one rank per stage, CPU ranks, MPI transport):
#   1. 3 ranks, pipeline mode: output byte-for-byte equal to `single` on the same input;
#   2. 4 ranks, hybrid 2x2: the same;
#   3. a rank killed with SIGKILL mid-stream: the job ends within 60 s, non-zero, the
#      launcher's message names the dead rank, and the survivors say which rank and stage they were;
#   4. a bad plan: every rank stops with an "error: rank N: ..." message and a non-zero exit;
#   5. profile-link over MPI between ranks 0 and 1, and a plan priced with it.
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
for _ in $(seq 1 300); do [ -s "$tmp/rank2.pid" ] && break; sleep 0.1; done
sleep 2  # let the stream run
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

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all MPI pipeline checks passed"
