"""STRCNN and STRCNN+DTB of Kim et al. (ICCV 2017): spatio-temporal recurrence, optional blending."""

from baselines.base import DeblurNet
from baselines.blocks import EncoderDecoderCell
from baselines.placements import DTB_PLACEMENTS
from bench_deblur.registry import Choices, register


@register("strcnn")
def strcnn(m: int = 1, width: float = 1.0, global_skip: bool = False) -> DeblurNet:
    """STRCNN: the CNN plus the fed-back feature map F_{n-1} (spatio-temporal recurrence)."""
    return DeblurNet(EncoderDecoderCell(m=m, width=width, global_skip=global_skip), name="strcnn")


@register("strcnn_dtb", choices={
    "placement": Choices({p.name: p.label for p in DTB_PLACEMENTS}, same_as={"none": "strcnn"}),
})
def strcnn_dtb(m: int = 1, width: float = 1.0, global_skip: bool = False, placement: str = "after_encoder") -> DeblurNet:
    """STRCNN+DTB: STRCNN plus dynamic temporal blending of features (placement: where DTB sits)."""
    cell = EncoderDecoderCell(m=m, width=width, global_skip=global_skip, placement=placement)
    return DeblurNet(cell, name="strcnn_dtb")
