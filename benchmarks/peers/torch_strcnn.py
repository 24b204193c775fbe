"""The paper's network (CNN, STRCNN, STRCNN+DTB of Kim et al., ICCV 2017) in PyTorch: a speed peer.

``from_keras`` copies a Keras model's weights into ``TorchCell``, which computes
the same function as ``baselines.blocks.EncoderDecoderCell`` (checked to 1e-4 in
tests/test_torch_peer.py), so the Keras and PyTorch timings compare one network.
Tensors are NCHW (stored channels_last when timed).

Keras/TensorFlow "same" padding is not PyTorch's: for a stride-2 conv on an
even size it pads only after (bottom/right), and a "same" transposed conv is
the full transposed conv cropped by the forward conv's padding. ``SameConv2d``
and ``SameConvTranspose2d`` do exactly that, using PyTorch's own padding
where the two agree (symmetric padding) so the fast path needs no extra copy.

Run as ``python -m benchmarks.peers.torch_strcnn`` (options of
``bench-deblur speed`` plus ``--compile``) to add PyTorch rows to a speed
results file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench_deblur.config import RUNTIME_SIZES
from bench_deblur.runtime import time_stream

PLACEMENTS = {"none": None, "mid_encoder": 2, "after_encoder": 4, "mid_decoder": 6, "after_decoder": 8}
"""Residual blocks before DTB; equal to ``baselines.blocks.PLACEMENTS`` (kept here so this module imports without Keras)."""
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) of one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with Keras "same" padding and an optional fused ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = False):
        symmetric = stride == 1 and kernel % 2 == 1
        super().__init__(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2 if symmetric else 0)
        self.symmetric = symmetric
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            top, bottom = same_pads(x.shape[-2], self.kernel_size[0], self.stride[0])
            left, right = same_pads(x.shape[-1], self.kernel_size[1], self.stride[1])
            x = F.pad(x, (left, right, top, bottom))
        x = super().forward(x)
        return F.relu(x) if self.relu else x


class SameConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with Keras "same" padding (output = input x stride) and an optional ReLU.

    Keras's transposed conv is the adjoint of a "same" conv from the output size;
    that conv pads k - s pixels, the extra one after, so the full transposed conv
    (padding 0) is cropped by that much.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, relu: bool = False):
        total = max(kernel - stride, 0)
        self.crop = (total // 2, total - total // 2)
        symmetric = self.crop[0] == self.crop[1]
        super().__init__(cin, cout, kernel, stride=stride, padding=self.crop[0] if symmetric else 0)
        self.symmetric = symmetric
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] * self.stride[0], x.shape[-1] * self.stride[1]
        y = super().forward(x)
        if not self.symmetric:
            y = y[..., self.crop[0] : self.crop[0] + h, self.crop[0] : self.crop[0] + w]
        return F.relu(y) if self.relu else y


class ResBlock(nn.Module):
    """x + conv3x3(relu(conv3x3(x)))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = SameConv2d(channels, channels, 3, relu=True)
        self.conv2 = SameConv2d(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class DTB(nn.Module):
    """Dynamic temporal blending: w = min(1, |tanh(conv5x5([h~_prev, h]))| + beta); w h + (1 - w) h~_prev."""

    def __init__(self, channels: int, beta: float = 0.1):
        super().__init__()
        self.conv = SameConv2d(2 * channels, channels, 5)
        self.beta = nn.Parameter(torch.tensor(beta))

    def forward(self, h: torch.Tensor, h_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.conv(torch.cat([h_prev, h], dim=1))
        w = torch.clamp(torch.abs(torch.tanh(d)) + self.beta, max=1.0)
        return w * h + (1.0 - w) * h_prev, w


def channels(base: int, width: float) -> int:
    """The Keras cell's channel rule: the paper's count times the width multiplier, at least 4."""
    return max(4, int(round(base * width)))


class TorchCell(nn.Module):
    """One frame of the paper's network; ``forward(window, states) -> (frame, states)``, NCHW.

    Same options and state layout as ``EncoderDecoderCell``: states are
    [F (feature feedback)] plus [h~ (DTB's blended features)] when DTB is placed.
    """

    def __init__(self, m: int = 1, width: float = 1.0, feedback: bool = True, placement: str = "none", global_skip: bool = False):
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"placement={placement!r}: expected one of {', '.join(PLACEMENTS)}")
        c, f = channels(64, width), channels(32, width)
        if 2 * f != c:
            raise ValueError(f"width={width}: the concatenation [x, F] has {2 * f} channels, the residual blocks {c}")
        self.m, self.feedback, self.placement, self.global_skip = m, feedback, placement, global_skip
        self.feature_channels, self.body_channels = f, c
        self.encoder_conv1 = SameConv2d(3 * (2 * m + 1), c, 5, relu=True)
        self.encoder_conv2 = SameConv2d(c, f, 3, stride=2, relu=True)
        self.body = nn.ModuleList(ResBlock(c) for _ in range(8))
        self.dtb = DTB(c) if PLACEMENTS[placement] is not None else None
        self.image_deconv = SameConvTranspose2d(c, c, 4, 2, relu=True)
        self.image_conv = SameConv2d(c, 3, 3)
        self.feature_conv = SameConv2d(c, f, 3, relu=True) if feedback else None

    def initial_states(self, window: torch.Tensor) -> list[torch.Tensor]:
        """Zero states at half resolution, in the window's dtype and device."""
        b, _, h, w = window.shape
        sizes = [self.feature_channels] + ([self.body_channels] if self.dtb is not None else [])
        return [window.new_zeros((b, c, -(-h // 2), -(-w // 2))) for c in sizes]

    def forward(self, window: torch.Tensor, states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feedback, *blend = states
        x = torch.cat([self.encoder_conv2(self.encoder_conv1(window)), feedback], dim=1)
        at = PLACEMENTS[self.placement]
        new_blend: list[torch.Tensor] = []
        for i in range(len(self.body) + 1):
            if i == at:
                x, _ = self.dtb(x, blend[0])
                new_blend = [x]
            if i < len(self.body):
                x = self.body[i](x)
        image = self.image_conv(self.image_deconv(x))
        if self.feature_conv is not None:
            feedback = self.feature_conv(x)
        if self.global_skip:
            image = image + window[:, 3 * self.m : 3 * self.m + 3]
        return image, [feedback, *new_blend]


def from_keras(model: Any) -> TorchCell:
    """A ``TorchCell`` with the weights of a Keras ``DeblurNet`` built on ``EncoderDecoderCell`` (cnn, strcnn, strcnn_dtb).

    Conv2D kernels (kh, kw, in, out) become (out, in, kh, kw). A Conv2DTranspose
    kernel (kh, kw, out, in) becomes PyTorch's (in, out, kh, kw) by the same
    permutation and no spatial flip: both frameworks define the transposed conv
    as the adjoint of the same cross-correlation.
    """
    import keras

    from baselines.blocks import EncoderDecoderCell

    cell = getattr(model, "cell", None)
    if not isinstance(cell, EncoderDecoderCell):
        raise TypeError(f"from_keras: expected a model built on EncoderDecoderCell, got {type(cell or model).__name__}")
    net = TorchCell(m=cell.m, width=cell.width, feedback=cell.feedback, placement=cell.placement, global_skip=cell.global_skip)
    pairs = [(net.encoder_conv1, cell.encoder_in[0]), (net.encoder_conv2, cell.encoder_in[1])]
    for block, layer in zip(net.body, cell.body, strict=True):
        pairs += [(block.conv1, layer.conv1), (block.conv2, layer.conv2)]
    pairs += [(net.image_deconv, cell.image_head[0]), (net.image_conv, cell.image_head[1])]
    if net.feature_conv is not None:
        pairs.append((net.feature_conv, cell.feature_head))
    if net.dtb is not None:
        pairs.append((net.dtb.conv, cell.dtb.conv))
    with torch.no_grad():
        for module, layer in pairs:
            kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float32)
            module.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            module.bias.copy_(torch.from_numpy(keras.ops.convert_to_numpy(layer.bias).astype(np.float32)))
        if net.dtb is not None:
            net.dtb.beta.fill_(float(keras.ops.convert_to_numpy(cell.dtb.beta)))
    copied = sum(p.numel() for p in net.parameters())
    if copied != model.count_params():
        raise TypeError(f"from_keras: copied {copied} weights but the Keras model has {model.count_params()}; "
                        "the cell has layers this peer lacks")
    return net.eval()


def _step(net: nn.Module, autocast_dtype: torch.dtype | None, device: torch.device):
    """One stream step without autograd, under bf16/fp16 autocast when asked."""

    def step(window, states):
        cast = (
            torch.autocast(device.type, dtype=autocast_dtype)
            if autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), cast:
            return net(window, states)

    return step


def time_peer(
    models: Sequence[str] = ("strcnn_dtb",),
    sizes: Sequence[tuple[int, int]] = RUNTIME_SIZES,
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    batches: Sequence[int] = (1, 8, 32),
    frames: int = 50,
    warmup: int = 5,
    repeats: int = 3,
    width: float = 1.0,
    m: int = 1,
    torch_compile: str = "auto",
    out: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Time the PyTorch peer with ``bench_deblur.speed``'s protocol and row schema; sizes are (width, height).

    On CUDA: channels_last, cuDNN autotuning, reduced dtypes by autocast with
    inputs and states in that dtype, ``torch.compile`` (one static-shape
    compilation per configuration; eager, noted in the row, where it fails) unless ``torch_compile="off"``, and
    ``torch.cuda.synchronize()`` after every step. On the CPU: eager float32
    only (other dtypes are skipped with a note). Rows are merged into ``out``
    after each measurement.
    """
    from bench_deblur.cost import count_macs
    from bench_deblur.errors import UserError
    from bench_deblur.progress import progress_bar
    from bench_deblur.provenance import TIMING_PACKAGES, device_info, versions
    from bench_deblur.registry import build_model, get
    from bench_deblur.speed import PROTOCOL, RESULTS_SCHEMA, check_grid, format_table, make_row, save_rows

    if torch_compile not in ("auto", "on", "off"):
        raise UserError(f"torch_compile={torch_compile!r}: expected auto, on or off")
    check_grid(sizes, batches, frames, warmup, repeats)
    for name in models:
        get(name)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    use_compile = torch_compile == "on" or (torch_compile == "auto" and cuda)
    if cuda:
        torch.backends.cudnn.benchmark = True
        info = {"backend": "torch", "device": torch.cuda.get_device_name(0), "device_type": "gpu"}
        sync, sync_text = (lambda _: torch.cuda.synchronize()), "torch.cuda.synchronize() after every step"
    else:
        info = {**device_info(), "backend": "torch"}
        sync, sync_text = (lambda _: None), "none needed: eager CPU execution is synchronous"
    layout = torch.channels_last if cuda else torch.contiguous_format
    settings = f", channels_last, cudnn.benchmark, cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}" if cuda else ""
    found = versions(TIMING_PACKAGES)
    generator = torch.Generator(device=device).manual_seed(0)
    rows: list[dict[str, Any]] = []
    bar = progress_bar(
        total=len(models) * len(dtypes) * len(sizes) * len(batches), desc="torch peer", unit="run", progress=progress
    )
    for name in models:
        keras_model = build_model(name, m=m, width=width)
        net = from_keras(keras_model).to(device, memory_format=layout)
        for dtype in dtypes:
            if dtype not in DTYPES:
                raise UserError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
            for w, h in sizes:
                macs = count_macs(keras_model, h, w)["macs"]
                for batch in batches:
                    bar.update()
                    if dtype != "float32" and not cuda:
                        bar.write(
                            f"torch {name} {dtype} {w}x{h} batch {batch}: skipped (reduced precision is timed on CUDA only)"
                        )
                        continue
                    tdtype = DTYPES[dtype]
                    autocast = None if dtype == "float32" else tdtype
                    shape = (batch, 3 * (2 * m + 1), h, w)
                    with (
                        torch.inference_mode()
                    ):  # inputs of the same kind as the states steps return: no recompilation at step 2
                        windows = [
                            torch.rand(shape, generator=generator, device=device, dtype=tdtype).contiguous(
                                memory_format=layout
                            )
                            for _ in range(3)
                        ]
                        states = [s.contiguous(memory_format=layout) for s in net.initial_states(windows[0])]
                    execution = "eager"
                    if use_compile:
                        torch._dynamo.reset()  # one static-shape compilation per configuration: no recompile limit, no dynamic shapes
                        try:
                            compiled = _step(torch.compile(net, dynamic=False), autocast, device)
                            first, seconds = time_stream(compiled, windows, states, sync, frames, repeats, warmup)
                            execution = "torch.compile(dynamic=False)"
                        except Exception as exc:  # noqa: BLE001 - any compiler failure: time eager instead, and say so in the row
                            execution = f"eager (torch.compile failed: {type(exc).__name__})"
                            bar.write(
                                f"torch {name} {dtype} {w}x{h} batch {batch}: torch.compile failed ({exc}); timing eager".splitlines()[
                                    0
                                ]
                            )
                    if execution.startswith("eager"):
                        first, seconds = time_stream(
                            _step(net, autocast, device), windows, states, sync, frames, repeats, warmup
                        )
                    execution += settings
                    del windows, states
                    row = make_row(
                        framework="torch", info=info, execution=execution, sync=sync_text, model=name, m=m,
                        width_multiplier=width, global_skip=net.global_skip, params=sum(p.numel() for p in net.parameters()),
                        macs=macs, width=w, height=h, batch=batch, dtype=dtype, frames=frames, warmup=warmup,
                        first_step_s=first, seconds=seconds, versions=found,
                    )  # fmt: skip
                    rows.append(row)
                    if out is not None:
                        save_rows(out, [row])
                    bar.write(
                        f"torch {name} {dtype} {w}x{h} batch {batch}: {row['fps_median']:.4g} frames/s ({row['tflops']:.3g} TFLOP/s)"
                    )
        if cuda:
            del net
            torch.cuda.empty_cache()
    bar.close()
    if rows:
        print(format_table(rows))
    return {"schema": RESULTS_SCHEMA, "protocol": PROTOCOL, "runs": rows}


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.peers.torch_strcnn``: PyTorch rows into a speed results file."""
    # Keras only builds the reference weights and counts MACs here: keep JAX (when it is Keras's
    # backend) on the CPU, or it reserves most of the GPU's memory that PyTorch then needs.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from bench_deblur.errors import UserError
    from bench_deblur.speed import add_arguments, grid_from_args

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers.torch_strcnn", description=__doc__.splitlines()[0]
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--compile", default="auto", choices=["auto", "on", "off"], help="torch.compile: auto = on CUDA only (default)"
    )
    add_arguments(parser)
    parser.set_defaults(models=["strcnn_dtb"])
    args = parser.parse_args(argv)
    try:
        time_peer(**grid_from_args(args), torch_compile=args.compile, progress=not args.quiet)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
