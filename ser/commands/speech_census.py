"""``python -m ser.commands.speech_census manifest=CSV [vad=silero] [min_speech=0.25,0.5]``: how
much of a corpus the speech gate would leave out, and how much louder ``noise.snr_reference=active``
mixes the noise, without training (:func:`ser.reporting.speech_census.census`)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from ser.cli import REQUIRED, Key, Spec, choice, expects, number, optional, parse, report_errors

COMMAND = "ser.commands.speech_census"


@expects("shares from 0 to 1, comma-separated (e.g. 0.25,0.5)")
def shares(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or not all(math.isfinite(v) and 0 <= v <= 1 for v in values):
        raise ValueError(text)
    return values


SPEC = Spec("how much of a corpus the speech gate would leave out, per class (no training)", (
    Key("manifest", REQUIRED, "the corpus: a manifest CSV (columns path,label[,speaker])"),
    Key("vad", "silero", "the speech detector", choice("silero", "webrtc", "energy")),
    Key("min_speech", [0.25, 0.5], "the shares of speech a block needs, one column each", shares),
    Key("cache_dir", None, "where the blocks and speech masks are cached (empty: $SER_CACHE, "
        "else ~/.cache/ser)", optional(str)),
    Key("sample_rate", 16000, "rate the corpus is read at", number(int, least=1, unit="Hz")),
))


@report_errors
def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv, SPEC, COMMAND)
    from ser.reporting.speech_census import census

    cache = args["cache_dir"] or os.environ.get("SER_CACHE") or str(Path.home() / ".cache" / "ser")
    print(census(args["manifest"], args["vad"], args["min_speech"], cache, args["sample_rate"]))


if __name__ == "__main__":
    main()
