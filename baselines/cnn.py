"""The naive repeated CNN of Kim et al. (ICCV 2017): no recurrence, one window at a time."""

from baselines.base import DeblurNet
from baselines.blocks import EncoderDecoderCell
from bench_deblur.registry import register


@register("cnn")
def cnn(m: int = 1, width: float = 1.0, global_skip: bool = False) -> DeblurNet:
    """Naive CNN: the paper's encoder/decoder applied to each (2m+1)-frame window; no state is used."""
    return DeblurNet(EncoderDecoderCell(m=m, width=width, global_skip=global_skip, feedback=False), name="cnn")
