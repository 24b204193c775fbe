"""Where DTB can sit in the paper's encoder/decoder, declared once, in architectural order (input to output).

``blocks.EncoderDecoderCell`` reads the positions; ``strcnn_dtb`` offers the names, with their labels, as
the choices of its ``placement`` option, which is how a sweep's placement group finds them
(``registry.option_choices``); the report shows the labels in this order. Plain Python, no Keras, so
that the report reads it without loading a model.
"""

from typing import NamedTuple


class Placement(NamedTuple):
    """A DTB placement: its option value, the residual blocks before DTB (None: no DTB) and its label in reports."""

    name: str
    blocks_before: int | None
    label: str


DTB_PLACEMENTS = (
    Placement("none", None, "none (STRCNN, no DTB)"),
    Placement("mid_encoder", 2, "mid-encoder"),  # after the 2nd encoder residual block
    Placement("after_encoder", 4, "after encoder (paper)"),  # between encoder and decoder, the paper's choice
    Placement("mid_decoder", 6, "mid-decoder"),  # after the 2nd decoder residual block
    Placement("after_decoder", 8, "after decoder"),  # just before the image and feature heads
)
"""4 encoder then 4 decoder residual blocks; ``none`` is STRCNN (the ``strcnn`` model)."""
