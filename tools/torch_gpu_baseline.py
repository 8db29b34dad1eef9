#!/usr/bin/env python3
"""PyTorch CUDA baseline for yolopipe: tools/torch_reference.py's YOLOv8, fp16, channels_last, CUDA graphs.

The model is the independent PyTorch YOLOv8 of tools/torch_reference.py (same architecture, same
seeded fused-BN weights as `torch_reference.build(scale, nc, seed)`). For each model and batch size
it builds the model on the GPU in fp16 with channels_last activations and `cudnn.benchmark`, warms
it up on a side stream, captures one forward pass in a torch.cuda.CUDAGraph with static input and
output buffers, and times replays with CUDA events (BASELINES.md's "CUDA graph" column).

It prints one machine-readable line per case on stdout, key=value separated by spaces:

  torch_gpu_baseline model=yolov8n batch=1 imgsz=640 precision=fp16 ms=1.020 img_s=980.4
      min_ms=1.010 e2e_ms=1.310 e2e_img_s=763.4 eager_ms=7.150 device="NVIDIA H100 80GB HBM3"

  ms / img_s     median over --repeats groups of --iters graph replays: ms per batch, images/s;
                 the model alone, input already on the GPU in fp16 NHWC (as in BASELINES.md)
  min_ms         the fastest group's ms per batch
  e2e_ms / e2e_img_s
                 like `yolopipe bench`'s Session::Run: an fp32 NCHW batch in pinned host memory is
                 copied to the GPU, converted, run (graph replay), and the fp32 output copied back
  eager_ms       only with --eager: the same model without graph replay
A case that fails prints `torch_gpu_baseline model=... batch=... error="..."` and the next case runs.

--dry-run builds the models on the CPU in fp32 (no CUDA), runs one forward pass per case and checks
the output shape (B, 4+nc, anchors) and finiteness; it prints the same kind of line with dry_run=1.

usage (with an interpreter that has torch: /usr/bin/python3 on the build machine, where only
--dry-run works; /opt/torch/.venv/bin/python3 on the GPU machine):
  torch_gpu_baseline.py --models n,s,m,l,x --batches 1,32 [--iters 20 --repeats 5 --warmup 10]
  torch_gpu_baseline.py --dry-run --models n --batches 1
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402  (tools/ is not a package)

PREFIX = "torch_gpu_baseline"


# torch_reference.make_anchors builds the anchors on the features' device, so the model runs on
# CUDA as it is (Detect caches the anchors per input shape: built during warm-up, never inside
# graph capture).


def parse_list(values, what, convert):
    out = []
    for v in values:
        for item in str(v).split(","):
            item = item.strip()
            if item:
                try:
                    out.append(convert(item))
                except (ValueError, KeyError) as e:
                    raise SystemExit(f"error: bad {what} '{item}': {e}")
    if not out:
        raise SystemExit(f"error: no {what} given")
    return out


def scale_of(name):
    s = name[len("yolov8"):] if name.startswith("yolov8") else name
    if s not in ref.SCALES:
        raise ValueError(f"expected one of {', '.join(sorted(ref.SCALES))} or yolov8<scale>")
    return s


def positive_int(text):
    v = int(text)
    if v < 1:
        raise ValueError("must be >= 1")
    return v


def num_anchors(imgsz):
    return sum((imgsz // int(s)) ** 2 for s in ref.STRIDES)


def fmt_line(fields):
    parts = [PREFIX]
    for k, v in fields.items():
        if isinstance(v, float):
            v = f"{v:.3f}" if k.endswith("ms") else f"{v:.1f}"
        v = str(v)
        if " " in v or '"' in v or v == "":
            v = '"' + v.replace('"', "'") + '"'
        parts.append(f"{k}={v}")
    return " ".join(parts)


def emit(fields):
    print(fmt_line(fields), flush=True)


def build_model(scale, args, device, dtype):
    model = ref.build(scale, args.nc, args.seed)
    return model.to(device=device, dtype=dtype).to(memory_format=torch.channels_last)


def check_output(y, batch, args, what):
    want = (batch, 4 + args.nc, num_anchors(args.imgsz))
    if tuple(y.shape) != want:
        raise RuntimeError(f"{what}: output shape {tuple(y.shape)}, expected {want}")
    if not torch.isfinite(y.float()).all():
        raise RuntimeError(f"{what}: output has non-finite values")


def dry_run_case(model, scale, batch, args):
    x = torch.rand(batch, 3, args.imgsz, args.imgsz).contiguous(memory_format=torch.channels_last)
    t0 = time.time()
    with torch.no_grad():
        y = model(x)
    check_output(y, batch, args, f"yolov8{scale} batch {batch}")
    return {"ms": (time.time() - t0) * 1e3, "out_shape": "x".join(str(d) for d in y.shape)}


def time_group(fn, iters):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / iters


def cuda_case(model, scale, batch, args):
    device = torch.device("cuda", args.device)
    dtype = torch.float16
    gen = torch.Generator(device="cpu").manual_seed(1234 + batch)
    host_in = torch.rand(batch, 3, args.imgsz, args.imgsz, generator=gen).pin_memory()
    dev_in32 = host_in.to(device)
    static_in = dev_in32.to(dtype).contiguous(memory_format=torch.channels_last)
    result = {}

    with torch.no_grad():
        # Warm-up on a side stream (as torch.cuda.graphs' docs do) so cudnn.benchmark's algorithm
        # search and the lazy initialisation stay out of the captured graph. It also caches
        # Detect's anchors for this input shape.
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(args.warmup):
                out = model(static_in)
        torch.cuda.current_stream(device).wait_stream(side)
        torch.cuda.synchronize(device)
        check_output(out, batch, args, f"yolov8{scale} batch {batch} (eager)")

        if args.eager:
            result["eager_ms"] = statistics.median(
                time_group(lambda: model(static_in), args.iters) for _ in range(args.repeats))

        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = model(static_in)
        graph.replay()
        torch.cuda.synchronize(device)
        check_output(static_out, batch, args, f"yolov8{scale} batch {batch} (graph)")

        for _ in range(max(1, args.warmup // 2)):
            graph.replay()
        groups = [time_group(graph.replay, args.iters) for _ in range(args.repeats)]
        result["ms"] = statistics.median(groups)
        result["min_ms"] = min(groups)

        # End to end like yolopipe's Session::Run: pinned fp32 NCHW host batch in, fp32 out.
        host_out = torch.empty(static_out.shape, dtype=torch.float32).pin_memory()

        def end_to_end():
            dev_in32.copy_(host_in, non_blocking=True)
            static_in.copy_(dev_in32)
            graph.replay()
            host_out.copy_(static_out.float(), non_blocking=True)

        for _ in range(2):
            end_to_end()
        result["e2e_ms"] = statistics.median(
            time_group(end_to_end, max(1, args.iters // 5)) for _ in range(args.repeats))
    return result  # the graph and its memory pool go with this frame


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["n,s,m,l,x"],
                   help="scales, comma or space separated: n s m l x (or yolov8n ...)")
    p.add_argument("--batches", nargs="+", default=["1,32"], help="batch sizes, e.g. 1,32")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--nc", type=int, default=80)
    p.add_argument("--seed", type=int, default=0, help="weight seed (torch_reference.build)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("--warmup", type=int, default=10, help="eager warm-up passes before capture")
    p.add_argument("--iters", type=int, default=20, help="graph replays per timed group")
    p.add_argument("--repeats", type=int, default=5, help="timed groups (median reported)")
    p.add_argument("--eager", action="store_true", help="also time eager mode (no graph)")
    p.add_argument("--dry-run", action="store_true",
                   help="CPU, fp32, no CUDA: build the models and check output shapes")
    args = p.parse_args(argv)
    scales = parse_list(args.models, "model", scale_of)
    batches = parse_list(args.batches, "batch", positive_int)
    if args.imgsz < 32 or args.imgsz % 32:
        raise SystemExit(f"error: --imgsz must be a positive multiple of 32, got {args.imgsz}")
    if args.warmup < 1 or args.iters < 1 or args.repeats < 1:
        raise SystemExit("error: --warmup, --iters and --repeats must be >= 1")

    if args.dry_run:
        torch.set_num_threads(max(1, min(os.cpu_count() or 1, 4)))
        device, dtype, precision, device_name = torch.device("cpu"), torch.float32, "fp32", "cpu"
    else:
        if not torch.cuda.is_available():
            print("error: no CUDA device visible to PyTorch (use --dry-run on a CPU machine)",
                  file=sys.stderr)
            return 1
        torch.backends.cudnn.benchmark = True
        device = torch.device("cuda", args.device)
        dtype, precision = torch.float16, "fp16"
        device_name = torch.cuda.get_device_name(device)
        print(f"# torch {torch.__version__} cuda {torch.version.cuda} "
              f"cudnn {torch.backends.cudnn.version()} device {device_name}", flush=True)

    failures = 0
    for scale in scales:
        try:
            model = build_model(scale, args, device, dtype)
        except Exception as e:  # noqa: BLE001 - report and go on with the next model
            for batch in batches:
                emit({"model": f"yolov8{scale}", "batch": batch, "error": f"{type(e).__name__}: {e}"})
                failures += 1
            continue
        for batch in batches:
            fields = {"model": f"yolov8{scale}", "batch": batch, "imgsz": args.imgsz,
                      "precision": precision}
            try:
                if args.dry_run:
                    r = dry_run_case(model, scale, batch, args)
                    fields.update(dry_run=1, cpu_ms=r["ms"], out_shape=r["out_shape"])
                else:
                    r = cuda_case(model, scale, batch, args)
                    fields.update(ms=r["ms"], img_s=batch * 1e3 / r["ms"], min_ms=r["min_ms"],
                                  e2e_ms=r["e2e_ms"], e2e_img_s=batch * 1e3 / r["e2e_ms"])
                    if "eager_ms" in r:
                        fields["eager_ms"] = r["eager_ms"]
                    fields["device"] = device_name
            except Exception as e:  # noqa: BLE001 - one failing case must not stop the others
                fields["error"] = f"{type(e).__name__}: {e}"
                failures += 1
                if not args.dry_run:
                    torch.cuda.empty_cache()
            emit(fields)
        del model
        if not args.dry_run:
            torch.cuda.empty_cache()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
