#!/usr/bin/python3
"""Independent PyTorch rendering of the YOLOv8 detect model (see shared/YOLOV8.md).

This file is the test oracle for yolopipe: it builds YOLOv8 n/s/m/l/x from the written
specification (not from Ultralytics code), with deterministic seeded weights, and exports it to
ONNX the way the Ultralytics exporter traces it. Run it with Debian's interpreter
(/usr/bin/python3; torch 1.13 CPU, onnx 1.12).

Commands:
  export  --scale n --nc 80 --seed 0 --imgsz 640 [--batch 1] [--dynamic] -o model.onnx
  run     --scale n --nc 80 --seed 0 --input in.npy -o out.npy
  fixture --scale n [--nc 80 --seed 0 --imgsz 640] --outdir DIR
          writes DIR/yolov8{scale}_static.onnx, _dynamic.onnx, _input_b1.npy, _input_b2.npy,
          _torch_b1.npy, _torch_b2.npy (the b2 input's first image is the b1 image)
  weights-from-onnx --onnx model.onnx --input in.npy -o out.npy [--scale S --nc N]
          loads the Conv weights of an ONNX file (e.g. one exported from yolopipe's built-in
          model) into this architecture and runs it in torch.

Weights are fused-BN style: every Conv module is a convolution with bias followed by SiLU.
"""

import argparse
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

# depth multiple, width multiple, max channels
SCALES = {
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}

REG_MAX = 16
STRIDES = (8.0, 16.0, 32.0)
# Seeded initialisation (there are no trained weights offline). Plain 1/fan_in weights with small
# biases let the activations die out over the ~40 SiLU layers (SiLU has slope 1/2 at 0); larger
# gains blow up through the residual chains of C2f. These values keep activations O(1) (RMS between
# ~0.4 and ~15 for every scale, seed and input tried), outputs that depend on the input, and class
# scores spread between 0 and 1:
#   weights  uniform, variance WEIGHT_GAIN / fan_in (RESIDUAL_GAIN for the second conv of a
#            shortcut Bottleneck, HEAD_GAIN for the plain 1x1 convs of Detect),
#   biases   uniform in [BIAS_MEAN - BIAS_HALF_RANGE, BIAS_MEAN + BIAS_HALF_RANGE] (a positive
#            BN-fused bias keeps the activation statistics from drifting), Detect's last biases as
#            YOLOV8.md says.
# yolopipe's built-in model (graph/yolov8/) uses the same rule with its own generator.
WEIGHT_GAIN = 1.5
RESIDUAL_GAIN = 0.75
HEAD_GAIN = 1.0
BIAS_MEAN = 0.5
BIAS_HALF_RANGE = 0.1

COCO_NAMES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]


def class_names(nc):
    if nc == 80:
        return {i: n for i, n in enumerate(COCO_NAMES)}
    return {i: f"class{i}" for i in range(nc)}


def make_divisible(x, divisor=8):
    return int(math.ceil(x / divisor) * divisor)


# ----------------------------------------------------------------------------- modules


class Conv(nn.Module):
    """Conv k/s with padding k//2, BN already fused into the bias, then SiLU."""

    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=True)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut):
        super().__init__()
        self.cv1 = Conv(c, c, 3, 1)
        self.cv2 = Conv(c, c, 3, 1)
        self.add = shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    def __init__(self, c1, c2, n, shortcut):
        super().__init__()
        self.c = c2 // 2
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x):
        # The exporter's forward_split: one Split node rather than chunk.
        y = list(self.cv1(x).split((self.c, self.c), 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    def forward(self, xs):
        return torch.cat(xs, 1)


class DFL(nn.Module):
    """Distribution focal loss integral: softmax over 16 bins, expectation with weights 0..15."""

    def __init__(self, c1=REG_MAX):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
        self.c1 = c1

    def forward(self, x):
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def make_anchors(feats, strides, offset=0.5):
    """Anchor centres (A, 2) in grid units and strides (A, 1), levels in order, rows y-major."""
    points, stride_list = [], []
    dtype, device = feats[0].dtype, feats[0].device
    for i, stride in enumerate(strides):
        _, _, h, w = feats[i].shape
        sx = torch.arange(end=w, dtype=dtype, device=device) + offset
        sy = torch.arange(end=h, dtype=dtype, device=device) + offset
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_list.append(torch.full((h * w, 1), stride, dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_list)


def dist2bbox(distance, anchor_points, dim=1):
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    c_xy = (x1y1 + x2y2) / 2
    wh = x2y2 - x1y1
    return torch.cat((c_xy, wh), dim)


class Detect(nn.Module):
    def __init__(self, nc, ch):
        super().__init__()
        self.nc = nc
        self.nl = len(ch)
        self.no = nc + REG_MAX * 4
        self.stride = torch.tensor(STRIDES)
        c2 = max(16, ch[0] // 4, REG_MAX * 4)
        c3 = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * REG_MAX, 1)) for x in ch)
        self.cv3 = nn.ModuleList(
            nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = DFL(REG_MAX)
        # dynamic: anchors are computed from the feature shapes on every call (and so traced into
        # the ONNX graph); otherwise they are cached per input shape and trace as constants.
        self.dynamic = False
        self.shape = None
        self.anchors = torch.empty(0)
        self.strides = torch.empty(0)

    def bias_init(self):
        for a, b, s in zip(self.cv2, self.cv3, self.stride):
            a[-1].bias.data[:] = 1.0
            b[-1].bias.data[: self.nc] = math.log(5 / self.nc / (640 / float(s)) ** 2)

    def forward(self, x):
        shape = x[0].shape
        for i in range(self.nl):
            x[i] = torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1)
        if self.dynamic or self.shape != shape:
            self.anchors, self.strides = (t.transpose(0, 1) for t in make_anchors(x, self.stride))
            self.shape = shape
        x_cat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
        box, cls = x_cat.split((REG_MAX * 4, self.nc), 1)
        dbox = dist2bbox(self.dfl(box), self.anchors.unsqueeze(0), dim=1) * self.strides
        return torch.cat((dbox, cls.sigmoid()), 1)


class YoloV8(nn.Module):
    """Layers 0..22 of YOLOV8.md; `froms` says where each layer's input comes from."""

    def __init__(self, scale="n", nc=80):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"unknown scale '{scale}' (expected one of n, s, m, l, x)")
        if nc < 1:
            raise ValueError(f"number of classes must be >= 1, got {nc}")
        depth, width, max_ch = SCALES[scale]
        self.scale, self.nc = scale, nc

        def ch(c):
            return make_divisible(min(c, max_ch) * width)

        def rep(r):
            return max(round(r * depth), 1)

        c = [ch(v) for v in (64, 128, 256, 512, 1024)]
        layers = [
            (-1, Conv(3, c[0], 3, 2)),                       # 0
            (-1, Conv(c[0], c[1], 3, 2)),                    # 1
            (-1, C2f(c[1], c[1], rep(3), True)),             # 2
            (-1, Conv(c[1], c[2], 3, 2)),                    # 3
            (-1, C2f(c[2], c[2], rep(6), True)),             # 4  P3
            (-1, Conv(c[2], c[3], 3, 2)),                    # 5
            (-1, C2f(c[3], c[3], rep(6), True)),             # 6  P4
            (-1, Conv(c[3], c[4], 3, 2)),                    # 7
            (-1, C2f(c[4], c[4], rep(3), True)),             # 8
            (-1, SPPF(c[4], c[4], 5)),                       # 9  P5
            (-1, nn.Upsample(scale_factor=2, mode="nearest")),  # 10
            ([-1, 6], Concat()),                             # 11
            (-1, C2f(c[4] + c[3], c[3], rep(3), False)),     # 12
            (-1, nn.Upsample(scale_factor=2, mode="nearest")),  # 13
            ([-1, 4], Concat()),                             # 14
            (-1, C2f(c[3] + c[2], c[2], rep(3), False)),     # 15 (stride 8)
            (-1, Conv(c[2], c[2], 3, 2)),                    # 16
            ([-1, 12], Concat()),                            # 17
            (-1, C2f(c[2] + c[3], c[3], rep(3), False)),     # 18 (stride 16)
            (-1, Conv(c[3], c[3], 3, 2)),                    # 19
            ([-1, 9], Concat()),                             # 20
            (-1, C2f(c[3] + c[4], c[4], rep(3), False)),     # 21 (stride 32)
            ([15, 18, 21], Detect(nc, (c[2], c[3], c[4]))),  # 22
        ]
        self.froms = [f for f, _ in layers]
        self.model = nn.ModuleList(m for _, m in layers)
        self.save = {j for f, _ in layers if isinstance(f, list) for j in f if j != -1}

    @property
    def detect(self):
        return self.model[-1]

    def forward(self, x):
        y = []
        for f, m in zip(self.froms, self.model):
            if f != -1:
                x = y[f] if isinstance(f, int) else [x if j == -1 else y[j] for j in f]
            x = m(x)
            y.append(x if len(y) in self.save else None)
        return x


def init_weights(model, seed):
    """Seeded weights as described at WEIGHT_GAIN; Detect biases per YOLOV8.md."""
    torch.manual_seed(seed)
    residual = set()
    for m in model.modules():
        if isinstance(m, Bottleneck) and m.add:
            residual.add(m.cv2.conv)
    head = set()
    for seq in list(model.detect.cv2) + list(model.detect.cv3):
        head.add(seq[-1])
    for m in model.modules():
        if not isinstance(m, nn.Conv2d) or m is model.detect.dfl.conv:
            continue
        gain = HEAD_GAIN if m in head else RESIDUAL_GAIN if m in residual else WEIGHT_GAIN
        fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        bound = math.sqrt(3.0 * gain / fan_in)
        with torch.no_grad():
            m.weight.uniform_(-bound, bound)
            m.bias.uniform_(BIAS_MEAN - BIAS_HALF_RANGE, BIAS_MEAN + BIAS_HALF_RANGE)
    model.detect.bias_init()


def build(scale, nc, seed):
    model = YoloV8(scale, nc)
    init_weights(model, seed)
    return model.eval().float()


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- export


def metadata(scale, nc, seed, imgsz, batch):
    """metadata_props as the Ultralytics exporter writes them (values are str() of Python values)."""
    return {
        "description": f"torch_reference yolov8{scale}, seed {seed}",
        "author": "yolopipe tools/torch_reference.py",
        "stride": str(int(max(STRIDES))),
        "task": "detect",
        "batch": str(batch),
        "imgsz": str([imgsz, imgsz]),
        "names": str(class_names(nc)),
    }


def export_onnx(model, path, imgsz, batch=1, dynamic=False, seed=0):
    """Exports like the Ultralytics exporter: opset 17, constant folding, BN fused (already)."""
    import onnx  # imported here so `run` works without the onnx package

    if imgsz % 32 != 0:
        raise ValueError(f"imgsz must be a multiple of 32, got {imgsz}")
    model = model.eval()
    det = model.detect
    det.dynamic = dynamic
    im = torch.zeros(batch, 3, imgsz, imgsz)
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python control flow on shapes; that is the intended behaviour.
        warnings.simplefilter("ignore")
        # Dry run: caches the anchors of this input shape so that a static export traces them as
        # constants (the exporter does the same before tracing).
        model(im)
        torch.onnx.export(
            model, im, path, verbose=False, opset_version=17, do_constant_folding=True,
            input_names=["images"], output_names=["output0"],
            dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                          "output0": {0: "batch", 2: "anchors"}} if dynamic else None)
    det.dynamic = False
    det.shape = None
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    for k, v in metadata(model.scale, model.nc, seed, imgsz, batch).items():
        meta = proto.metadata_props.add()
        meta.key, meta.value = k, v
    onnx.save(proto, path)


def run_model(model, x):
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % 32 or x.shape[3] % 32:
        raise ValueError(f"input must be (B, 3, H, W) with H, W multiples of 32, got {x.shape}")
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return y.numpy()


def sanity_check(y, nc, what):
    """Fails loudly when seeded weights gave a degenerate output."""
    if not np.isfinite(y).all():
        raise RuntimeError(f"{what}: output has non-finite values")
    scores = y[:, 4:4 + nc]
    if scores.max() <= 0.0 or scores.min() >= 1.0 or scores.max() - scores.min() < 1e-3:
        raise RuntimeError(f"{what}: degenerate class scores in [{scores.min()}, {scores.max()}]")


def fixture_input(batch, imgsz, seed):
    """Deterministic pseudo-random image batch in [0, 1); image 0 does not depend on the batch."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.random((3, imgsz, imgsz), dtype=np.float32) for _ in range(batch)])


# ----------------------------------------------------------------------------- weights from ONNX


def conv_execution_order(model, imgsz=64):
    """nn.Conv2d modules in the order a forward pass calls them (the order of an ONNX graph)."""
    order = []
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append(mod))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, imgsz, imgsz))
    for h in hooks:
        h.remove()
    model.detect.shape = None
    return order


def onnx_conv_params(proto):
    """[(node name, weight name, weight array, bias array or None)] of the Conv nodes whose
    weights are constants, in graph order."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in proto.graph.node:
        # Constant nodes hold weights in unfolded exports; torch's initializer de-duplication
        # turns a repeated tensor (e.g. Detect's all-ones box biases) into an Identity.
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            inits[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "Identity" and node.input[0] in inits:
            inits[node.output[0]] = inits[node.input[0]]
    convs = []
    for node in proto.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        bias = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        convs.append((node.name, node.input[1], inits[node.input[1]], bias))
    return convs


SCALE_BY_STEM_CHANNELS = {16: "n", 32: "s", 48: "m", 64: "l", 80: "x"}


def model_from_onnx(path, scale=None, nc=None):
    """Builds the torch model and loads every Conv weight and bias of the ONNX file into it.

    Parameters are matched by name first (yolopipe's initializer names are the torch parameter
    names without the Conv wrapper's '.conv', e.g. model.4.m.1.cv2.weight) and otherwise by the
    order of Conv nodes in the graph against the order torch calls its convolutions; every shape
    is checked.
    """
    import onnx

    proto = onnx.load(path)
    convs = onnx_conv_params(proto)
    if not convs:
        raise ValueError(f"{path}: no Conv node with constant weights")
    if scale is None:
        stem = convs[0][2].shape[0]
        if stem not in SCALE_BY_STEM_CHANNELS:
            raise ValueError(f"{path}: first Conv has {stem} output channels; cannot tell the scale")
        scale = SCALE_BY_STEM_CHANNELS[stem]
    if nc is None:
        # The class branch's plain conv of level 0 is the 6th Detect conv in execution order.
        probe = YoloV8(scale, 1)
        n_backbone = len(conv_execution_order(probe)) - 19
        if len(convs) < n_backbone + 6:
            raise ValueError(f"{path}: {len(convs)} Conv nodes is too few for yolov8{scale}")
        nc = int(convs[n_backbone + 5][2].shape[0])
    model = YoloV8(scale, nc).eval()
    order = conv_execution_order(model)
    if len(order) != len(convs):
        raise ValueError(f"{path}: {len(convs)} Conv nodes, yolov8{scale} with nc={nc} has "
                         f"{len(order)}")
    by_weight_name = {c[1]: c for c in convs}
    module_name = {m: n for n, m in model.named_modules()}
    # Name of a wrapped conv "model.0.conv" -> "model.0.weight"; a plain one "model.22.cv2.0.2"
    # -> "model.22.cv2.0.2.weight".
    named = []
    for m in order:
        n = module_name[m]
        stem = n[: -len(".conv")] if n.endswith(".conv") else n
        named.append(by_weight_name.get(stem + ".weight"))
    use_names = all(c is not None for c in named)
    matched = named if use_names else convs
    for m, (node, wname, w, b) in zip(order, matched):
        if tuple(w.shape) != tuple(m.weight.shape):
            raise ValueError(f"{path}: Conv '{node}' weight '{wname}' has shape {w.shape}, "
                             f"expected {tuple(m.weight.shape)} for {module_name[m]}")
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float32)))
            if m.bias is not None:
                if b is None or tuple(b.shape) != tuple(m.bias.shape):
                    raise ValueError(f"{path}: Conv '{node}' needs a bias of shape "
                                     f"{tuple(m.bias.shape)}")
                m.bias.copy_(torch.from_numpy(np.array(b, dtype=np.float32)))
    return model, ("names" if use_names else "order")


# ----------------------------------------------------------------------------- CLI


def cmd_export(args):
    model = build(args.scale, args.nc, args.seed)
    export_onnx(model, args.output, args.imgsz, args.batch, args.dynamic, args.seed)


def cmd_run(args):
    model = build(args.scale, args.nc, args.seed)
    y = run_model(model, np.load(args.input))
    sanity_check(y, args.nc, args.input)
    np.save(args.output, y)


def cmd_fixture(args):
    os.makedirs(args.outdir, exist_ok=True)
    stem = os.path.join(args.outdir, f"yolov8{args.scale}")
    t0 = time.time()
    model = build(args.scale, args.nc, args.seed)
    export_onnx(model, stem + "_static.onnx", args.imgsz, 1, False, args.seed)
    export_onnx(model, stem + "_dynamic.onnx", args.imgsz, 1, True, args.seed)
    b2 = fixture_input(2, args.imgsz, args.input_seed)
    for batch, x in ((1, b2[:1]), (2, b2)):
        y = run_model(model, x)
        sanity_check(y, args.nc, f"yolov8{args.scale} batch {batch}")
        np.save(f"{stem}_input_b{batch}.npy", x)
        np.save(f"{stem}_torch_b{batch}.npy", y)
    print(f"yolov8{args.scale} fixtures in {time.time() - t0:.1f} s", file=sys.stderr)


def cmd_weights_from_onnx(args):
    model, how = model_from_onnx(args.onnx, args.scale, args.nc)
    y = run_model(model, np.load(args.input))
    sanity_check(y, model.nc, args.input)
    np.save(args.output, y)
    print(f"loaded yolov8{model.scale} nc={model.nc} from {args.onnx} (matched by {how})",
          file=sys.stderr)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def model_flags(q):
        q.add_argument("--scale", default="n", choices=sorted(SCALES))
        q.add_argument("--nc", type=int, default=80)
        q.add_argument("--seed", type=int, default=0)

    q = sub.add_parser("export", help="export the seeded model to ONNX")
    model_flags(q)
    q.add_argument("--imgsz", type=int, default=640)
    q.add_argument("--batch", type=int, default=1)
    q.add_argument("--dynamic", action="store_true")
    q.add_argument("-o", "--output", required=True)
    q.set_defaults(func=cmd_export)

    q = sub.add_parser("run", help="run the seeded model in torch on an .npy input")
    model_flags(q)
    q.add_argument("--imgsz", type=int, default=640, help="ignored; the input sets the size")
    q.add_argument("--input", required=True)
    q.add_argument("-o", "--output", required=True)
    q.set_defaults(func=cmd_run)

    q = sub.add_parser("fixture", help="write test fixtures for one scale")
    model_flags(q)
    q.add_argument("--imgsz", type=int, default=640)
    q.add_argument("--input_seed", type=int, default=1234)
    q.add_argument("--outdir", required=True)
    q.set_defaults(func=cmd_fixture)

    q = sub.add_parser("weights-from-onnx", help="run this architecture with an ONNX file's weights")
    q.add_argument("--onnx", required=True)
    q.add_argument("--scale", default=None, choices=sorted(SCALES))
    q.add_argument("--nc", type=int, default=None)
    q.add_argument("--input", required=True)
    q.add_argument("-o", "--output", required=True)
    q.set_defaults(func=cmd_weights_from_onnx)

    args = p.parse_args(argv)
    # Build systems run several of these at once: OMP_NUM_THREADS=1 avoids oversubscribing cores
    # (torch's spinning worker threads make that many times slower).
    threads = os.environ.get("OMP_NUM_THREADS", "")
    torch.set_num_threads(int(threads) if threads.isdigit() and int(threads) > 0
                          else max(1, min(os.cpu_count() or 1, 4)))
    try:
        args.func(args)
    except Exception as e:  # noqa: BLE001 - one line on stderr, no stack, for scripts
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
