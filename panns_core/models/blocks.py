"""Layers of the PANNs CNN family.

Attribute names and layer order are those of the reference implementation, so the
state_dict keys (``conv_block1.conv1.weight``, ``features.3.4.weight``, ...) match
the released checkpoints exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def init_layer(layer: nn.Module) -> None:
    """PANNs' initialisation of a convolution or linear layer."""
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        layer.bias.data.fill_(0.0)


def init_bn(bn: nn.Module) -> None:
    bn.bias.data.fill_(0.0)
    bn.weight.data.fill_(1.0)


def pool2d(x: torch.Tensor, pool_size: tuple[int, int], pool_type: str = "avg") -> torch.Tensor:
    if pool_size == (1, 1):
        return x
    if pool_type == "avg":
        return F.avg_pool2d(x, kernel_size=pool_size)
    if pool_type == "max":
        return F.max_pool2d(x, kernel_size=pool_size)
    if pool_type == "avg+max":
        return F.avg_pool2d(x, kernel_size=pool_size) + F.max_pool2d(x, kernel_size=pool_size)
    raise ValueError(f"Unknown pool type {pool_type!r}")


class ConvBlock(nn.Module):
    """Conv-BN-ReLU layers then pooling.

    ``kernel_size=3`` gives the two 3x3 convolutions of Cnn14/Cnn10 (``conv1``,
    ``conv2``, ``bn1``, ``bn2``); ``kernel_size=5`` gives Cnn6's single 5x5 layer.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        layers = 2 if kernel_size == 3 else 1
        padding = kernel_size // 2
        self.num_layers = layers
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, 1, padding, bias=False)
        if layers == 2:
            self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, 1, padding, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        if layers == 2:
            self.bn2 = nn.BatchNorm2d(out_channels)
        self.init_weights()

    def init_weights(self) -> None:
        init_layer(self.conv1)
        init_bn(self.bn1)
        if self.num_layers == 2:
            init_layer(self.conv2)
            init_bn(self.bn2)

    def forward(
        self, x: torch.Tensor, pool_size: tuple[int, int] = (2, 2), pool_type: str = "avg"
    ) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.num_layers == 2:
            x = F.relu(self.bn2(self.conv2(x)))
        return pool2d(x, pool_size, pool_type)


class ConvPreWavBlock(nn.Module):
    """1-d block of the Wavegram branch: a plain and a dilated conv, then max pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, out_channels, 3, 1, padding=1, bias=False)
        self.conv2 = nn.Conv1d(out_channels, out_channels, 3, 1, padding=2, dilation=2, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.init_weights()

    def init_weights(self) -> None:
        init_layer(self.conv1)
        init_layer(self.conv2)
        init_bn(self.bn1)
        init_bn(self.bn2)

    def forward(self, x: torch.Tensor, pool_size: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.max_pool1d(x, kernel_size=pool_size)


class AttBlock(nn.Module):
    """Attention pooling over time (Cnn14_DecisionLevelAtt).

    ``bn_att`` is unused in the forward pass, as in the reference; it is kept so
    the checkpoints load with ``strict=True``.
    """

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.att = nn.Conv1d(n_in, n_out, kernel_size=1, bias=True)
        self.cla = nn.Conv1d(n_in, n_out, kernel_size=1, bias=True)
        self.bn_att = nn.BatchNorm1d(n_out)
        self.init_weights()

    def init_weights(self) -> None:
        init_layer(self.att)
        init_layer(self.cla)
        init_bn(self.bn_att)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` (batch, channels, time) -> (clipwise, attention, segment logits)."""
        norm_att = torch.softmax(torch.clamp(self.att(x), -10, 10), dim=-1)
        logits = self.cla(x)
        clipwise = torch.sum(norm_att * torch.sigmoid(logits), dim=2)
        return clipwise, norm_att, logits


def mobilenet_conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    layers = nn.Sequential(
        nn.Conv2d(inp, oup, 3, 1, 1, bias=False),
        nn.AvgPool2d(stride),
        nn.BatchNorm2d(oup),
        nn.ReLU(inplace=True),
    )
    init_layer(layers[0])
    init_bn(layers[2])
    return layers


def mobilenet_conv_dw(inp: int, oup: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 (+ average pooling as the stride), then pointwise 1x1."""
    layers = nn.Sequential(
        nn.Conv2d(inp, inp, 3, 1, 1, groups=inp, bias=False),
        nn.AvgPool2d(stride),
        nn.BatchNorm2d(inp),
        nn.ReLU(inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU(inplace=True),
    )
    init_layer(layers[0])
    init_bn(layers[2])
    init_layer(layers[4])
    init_bn(layers[5])
    return layers


# (in, out, stride) of MobileNetV1's depthwise-separable layers after the first conv.
MOBILENET_V1_LAYERS: tuple[tuple[int, int, int], ...] = (
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 512, 2),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 1024, 2),
    (1024, 1024, 1),
)


def mobilenet_v1_features() -> nn.Sequential:
    layers = [mobilenet_conv_bn(1, 32, 2)]
    layers += [mobilenet_conv_dw(i, o, s) for i, o, s in MOBILENET_V1_LAYERS]
    return nn.Sequential(*layers)


def do_mixup(x: torch.Tensor, mixup_lambda: torch.Tensor) -> torch.Tensor:
    """Mix even and odd batch items: out[i] = x[2i] * l[2i] + x[2i+1] * l[2i+1]."""
    lam = mixup_lambda.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
    return x[0::2] * lam[0::2] + x[1::2] * lam[1::2]
