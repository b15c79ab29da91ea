"""The benchmark models, defined in torch, with their inputs and MAC counts.

superres      the super-resolution net of the torch ONNX tutorial, 1x1x224x224
resnet18w48   a ResNet-18-shaped CNN (BasicBlocks [2, 2, 2, 2], widths 48/96/192/384)
mlp           784-512-512-10 MLP, batch 64
transformer   2-layer transformer encoder, d 256, 4 heads, FFN 1024, sequence 128
mobilenetv2   MobileNetV2 layout at width 1.0, 1x3x224x224 (depthwise 3x3 convolutions)
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

__all__ = ["MODELS", "build", "count_macs", "live_bytes"]


class SuperResolution(nn.Module):
    """Sub-pixel CNN, upscale factor 3 (the torch ONNX tutorial's network)."""

    def __init__(self, upscale: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv4 = nn.Conv2d(32, upscale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        return self.shuffle(self.conv4(x))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18Width48(nn.Module):
    """ResNet-18 layout at width 48: 7x7/2 stem, max pool, 4 stages, average pool, fc."""

    def __init__(self, width: int = 48, classes: int = 1000):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        blocks, cin = [], width
        for i, w in enumerate(widths):
            blocks += [BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.pool(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, depthwise 3x3, 1x1 projection (ReLU6 between)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6()]
        layers += [
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU6(),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2 at width 1.0: 17 inverted residual blocks between a 3x3/2 stem and a
    1x1 convolution to 1280 channels, average pool, fc."""

    # (expansion, output channels, blocks, first stride)
    STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
              (6, 160, 3, 2), (6, 320, 1, 1)]  # fmt: skip

    def __init__(self, classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()
        ]
        cin = 32
        for expand, cout, blocks, stride in self.STAGES:
            for i in range(blocks):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers += [nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1280, classes)

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.fc(torch.flatten(x, 1))


def _mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )


def _transformer() -> nn.Module:
    layer = nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


# name -> (constructor, input shape)
MODELS = {
    "superres": (SuperResolution, (1, 1, 224, 224)),
    "resnet18w48": (ResNet18Width48, (1, 3, 224, 224)),
    "mlp": (_mlp, (64, 784)),
    "transformer": (_transformer, (1, 128, 256)),
    "mobilenetv2": (MobileNetV2, (1, 3, 224, 224)),
}


def _randomise_batch_norm(model: nn.Module, rng: np.random.Generator) -> None:
    """Give batch norms non-trivial statistics so that folding them is exercised."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.1, n).astype(np.float32)))
            m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, n).astype(np.float32)))


def build(name: str, seed: int = 0) -> tuple[onnx.ModelProto, np.ndarray]:
    """Build model `name` with fixed random weights; return its ONNX model and an input."""
    from wasmexport.exporters import to_onnx

    make, shape = MODELS[name]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = make().eval()
    _randomise_batch_norm(model, rng)
    x = rng.standard_normal(shape).astype(np.float32)
    exported = to_onnx(model, x, framework="torch", dynamic_axes=False)
    return exported.onnx_model, x


def count_macs(onnx_model: onnx.ModelProto) -> int:
    """Multiply-accumulates of the Conv, Gemm and MatMul nodes (static shapes)."""
    model = onnx.shape_inference.infer_shapes(onnx_model)
    g = model.graph
    shapes = {}
    for vi in (*g.input, *g.value_info, *g.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    for t in g.initializer:
        shapes[t.name] = list(t.dims)
    macs = 0
    for node in g.node:
        out = shapes.get(node.output[0])
        if node.op_type == "Conv" and out:
            w = shapes[node.input[1]]
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul") and out:
            a = shapes[node.input[0]]
            k = a[-1]
            if node.op_type == "Gemm":
                k = a[0] if any(x.name == "transA" and x.i for x in node.attribute) else a[1]
            macs += int(np.prod(out)) * k
    return macs


def live_bytes(onnx_model: onnx.ModelProto) -> tuple[int, int]:
    """(weight bytes, largest sum of live activation bytes over the nodes), static shapes.

    A value is live from the node that writes it to its last reader (graph inputs from the
    start, graph outputs to the end), the way the runtime frees activations.
    """
    model = onnx.shape_inference.infer_shapes(onnx_model)
    g = model.graph
    size = {}
    for vi in (*g.input, *g.value_info, *g.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        size[vi.name] = 4 * int(np.prod(dims)) if dims else 4
    weights = sum(int(np.prod(t.dims)) * 4 for t in g.initializer)
    inits = {t.name for t in g.initializer}
    last = {}
    for i, node in enumerate(g.node):
        for name in node.input:
            last[name] = i
    for out in g.output:
        last[out.name] = len(g.node)
    live = {i.name for i in g.input if i.name not in inits}
    peak = 0
    for i, node in enumerate(g.node):
        live |= {o for o in node.output if o}
        peak = max(peak, sum(size.get(v, 0) for v in live))
        live = {v for v in live if last.get(v, -1) > i}
    return weights, peak
