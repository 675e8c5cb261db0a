"""The paper's colouring: a [0, 1] image -> matplotlib colour-map pixels, as uint8.

``plt.imsave(cmap="jet")`` looks each value up in the colour map's 256-entry table with
``index = floor(value · N)`` (1.0 goes to the last entry) and stores the entry's RGBA bytes
``floor(255 · colour)``. We register exactly that byte table as a buffer and gather from it, so
the pixels equal matplotlib's and ``.to(device)`` moves the table along.
"""

from __future__ import annotations

import torch
from torch import nn

from ser.errors import SerError


def colormap_bytes(name: str = "jet") -> torch.Tensor:
    """matplotlib's colour table ``name`` as the uint8 RGBA bytes imsave writes: (N, 4)."""
    import matplotlib
    import numpy as np

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise SerError(f"Unknown colour map {name!r} for the spectrogram images. Use a "
                       "matplotlib colour-map name (the paper uses 'jet').") from None
    return torch.from_numpy(np.ascontiguousarray(cmap(np.arange(cmap.N), bytes=True)))


class JetColour(nn.Module):
    """[0, 1] image -> RGBA bytes: (B, H, W) float -> (B, 4, H, W) uint8, channels-last memory.

    The output is RGBA (alpha 255) rather than RGB because four bytes make one 32-bit word: the
    lookup gathers one int32 per pixel, and torch's uint8 antialiased resize is fastest on
    channels-last RGBA. Any matplotlib colour map works; ``jet`` is the paper's.
    """

    def __init__(self, colormap: str = "jet") -> None:
        super().__init__()
        table = colormap_bytes(colormap)
        self.levels = int(table.shape[0])
        self.register_buffer("table", table, persistent=False)

    def indices(self, image: torch.Tensor) -> torch.Tensor:
        """Colour-table rows of a [0, 1] image, as matplotlib picks them (int64, same shape)."""
        # Truncation == floor for the non-negative values; 1.0 maps to the last entry.
        return (image * self.levels).clamp_(0, self.levels - 1).long()

    def lookup(self, rows: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Colour-table rows (any int shape) -> one int32 per pixel holding its RGBA bytes.

        ``out`` (int32, ``rows.numel()`` elements) receives the words without an allocation.
        """
        table = self.table.view(torch.int32).view(-1)
        flat = rows.reshape(-1)
        words = table.index_select(0, flat) if out is None else torch.index_select(
            table, 0, flat, out=out.view(-1))
        return words.view(rows.shape)

    def words(self, image: torch.Tensor) -> torch.Tensor:
        """[0, 1] image (B, H, W) -> RGBA pixels packed as int32 words (B, H, W)."""
        return self.lookup(self.indices(image))

    @staticmethod
    def as_rgba(words: torch.Tensor) -> torch.Tensor:
        """int32 pixel words (B, H, W) -> their bytes (B, 4, H, W) uint8, channels-last (a view)."""
        batch, height, width = words.shape
        pixels = words.contiguous().view(torch.uint8).view(batch, height, width, 4)
        return pixels.permute(0, 3, 1, 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.as_rgba(self.words(image))
