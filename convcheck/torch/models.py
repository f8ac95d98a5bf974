"""Networks for the simulated and distributed runs: an MLP, a LeNet-style CNN, ResNets (8, 18).

Every model takes flat inputs ``(B, C·H·W)`` (the layout of :class:`convcheck.data.Dataset`
rows) and reshapes them to images itself, and has no buffers (no BatchNorm running statistics),
so that ``torch.func.functional_call`` and ``vmap`` over workers apply to its parameters alone.
Initialization is seeded (:func:`make_model`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convcheck.errors import InputError, check_choice, check_int

MODELS = ("mlp", "lenet", "resnet8", "resnet18")


class MLP(nn.Module):
    """``Linear → ReLU`` blocks of the given widths, then a linear classifier."""

    def __init__(self, input_dim: int, classes: int, hidden: Sequence[int] = (200, 200)) -> None:
        super().__init__()
        widths = [input_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LeNet(nn.Module):
    """LeNet-style CNN: two ``conv 5×5 (padding 2) → ReLU → max-pool 2`` blocks (6 and 16
    channels), then ``120 → 84 → classes`` fully connected layers.

    Parameters
    ----------
    image_shape : (C, H, W)
        Input images, given flattened; ``H, W ≥ 4`` (28×28 MNIST: 16·7·7 features after the
        convolutions; 8×8 digits: 16·2·2).
    """

    def __init__(self, image_shape: Sequence[int], classes: int) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        channels, height, width = self.image_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        flat = 16 * (height // 2 // 2) * (width // 2 // 2)
        self.classifier = nn.Sequential(
            nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.view(x.shape[0], *self.image_shape)
        return self.classifier(self.features(images).flatten(1))


class _Block(nn.Module):
    """Pre-activation residual block with GroupNorm: ``x + conv(relu(gn(conv(relu(gn(x))))))``
    (a 1×1 strided projection when the shape changes)."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, inputs), inputs)
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(min(8, outputs), outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.project = (
            nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False)
            if stride != 1 or inputs != outputs
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.relu(self.norm1(x)))
        out = self.conv2(torch.relu(self.norm2(out)))
        return out + (x if self.project is None else self.project(x))


class ResNet8(nn.Module):
    """ResNet-8 for CIFAR-like input: a 3×3 stem (16 channels), three residual stages of one
    block each (16, 32, 64 channels; strides 1, 2, 2), global average pooling, a linear layer.

    GroupNorm replaces BatchNorm (no running statistics, so ``vmap`` over workers applies);
    this is our choice, not the original ResNet's.
    """

    def __init__(self, image_shape: Sequence[int], classes: int) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.stem = nn.Conv2d(self.image_shape[0], 16, 3, padding=1, bias=False)
        self.stages = nn.Sequential(_Block(16, 16, 1), _Block(16, 32, 2), _Block(32, 64, 2))
        self.norm = nn.GroupNorm(8, 64)
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x.view(x.shape[0], *self.image_shape)))
        out = torch.relu(self.norm(out)).mean(dim=(2, 3))
        return self.head(out)


class ResNet18(nn.Module):
    """ResNet-18 for CIFAR-sized input (the 3×3-stem variant): a 3×3 stem (64 channels), four
    stages of two residual blocks (64, 128, 256, 512 channels; strides 1, 2, 2, 2), global
    average pooling, a linear layer; 11.2M parameters for 3×32×32 input and 10 classes.

    Pre-activation blocks with GroupNorm (no BatchNorm running statistics, so ``vmap`` over
    workers applies), as in :class:`ResNet8`: our choice, not the original network's.
    """

    def __init__(self, image_shape: Sequence[int], classes: int) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        widths = (64, 128, 256, 512)
        self.stem = nn.Conv2d(self.image_shape[0], widths[0], 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        inputs = widths[0]
        for stage, width in enumerate(widths):
            blocks += [_Block(inputs, width, 1 if stage == 0 else 2), _Block(width, width, 1)]
            inputs = width
        self.stages = nn.Sequential(*blocks)
        self.norm = nn.GroupNorm(8, widths[-1])
        self.head = nn.Linear(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x.view(x.shape[0], *self.image_shape)))
        out = torch.relu(self.norm(out)).mean(dim=(2, 3))
        return self.head(out)


def make_model(
    name: str,
    *,
    input_dim: int,
    classes: int,
    image_shape: Sequence[int] | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    **params,
) -> nn.Module:
    """Build model ``name`` with parameters initialized from ``seed`` (global RNG untouched).

    Parameters
    ----------
    name : {"mlp", "lenet", "resnet8", "resnet18"}
    input_dim : int
        Features per sample (``C·H·W`` for images).
    classes : int
    image_shape : (C, H, W), optional
        Required by the CNNs; ``C·H·W`` must equal ``input_dim``.
    params
        ``hidden`` (MLP widths).
    """
    name = check_choice("model", name, MODELS)
    input_dim = check_int("input_dim", input_dim, 1)
    classes = check_int("classes", classes, 2)
    if name != "mlp":
        if image_shape is None or len(image_shape) != 3 or (
            image_shape[0] * image_shape[1] * image_shape[2] != input_dim
        ):
            raise InputError("image_shape", image_shape, f"(C, H, W) with C·H·W = {input_dim}")
        if min(image_shape[1:]) < 4:
            raise InputError("image_shape", image_shape, "images of at least 4×4")
    allowed = {"mlp": ("hidden",)}.get(name, ())
    for key, value in params.items():
        if key not in allowed:
            raise InputError(key, value, f"a parameter of model {name!r}: {allowed or 'none'}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "mlp":
            hidden = tuple(check_int("hidden", h, 1) for h in params.get("hidden", (200, 200)))
            model = MLP(input_dim, classes, hidden)
        elif name == "lenet":
            model = LeNet(image_shape, classes)
        elif name == "resnet8":
            model = ResNet8(image_shape, classes)
        else:
            model = ResNet18(image_shape, classes)
    return model.to(dtype)
