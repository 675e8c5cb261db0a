"""The SNR settings of a run as numbers: training copies and test levels.

``snr=clean|all|<dB>``, ``data.all_snrs`` and ``data.test_snrs`` are read here once, with one
clear error for a value that is not a level in dB.
"""

from __future__ import annotations

import math
from typing import Any

from ser.errors import SerError


def snr_name(snr: float) -> str:
    """Test-set key as in metrics.json: ``clean`` or ``15dB``."""
    return "clean" if math.isinf(snr) else f"{snr:g}dB"


def parse_snrs(values: Any, key: str) -> list[float]:
    try:
        return [float(v) for v in (values or [])]
    except (TypeError, ValueError):
        raise SerError(f"`{key}` must be a list of numbers in dB (e.g. [15, 20, 40]); got {values!r}.") from None


def training_snrs(snr: Any, all_snrs: list[float]) -> list[float]:
    """The SNRs of the noisy training copies: ``clean`` none, ``all`` each of ``all_snrs``."""
    if str(snr).lower() == "clean":
        return []
    if str(snr).lower() == "all":
        return parse_snrs(all_snrs, "data.all_snrs")
    try:
        return [float(snr)]
    except (TypeError, ValueError):
        raise SerError(f"snr={snr!r} is not a training choice: use snr=clean (clean blocks only), "
                       "snr=all (clean plus a copy at each of data.all_snrs, 15/20/40 dB) or a "
                       "number in dB such as snr=15.") from None
