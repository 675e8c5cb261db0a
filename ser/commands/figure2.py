"""``ser-figure2 input=IN.wav output=OUT.png [snr=15]`` / ``python -m ser.figure2``: the paper's
Figure 2, a clean and a noisy 1-s spectrogram side by side (:mod:`ser.figure2` draws it).

Exit status: 0 written, 2 bad input (the reason printed as one paragraph by
:func:`ser.cli.report_errors`, as by every command). ``IN.wav OUT.png`` without their key names
work too, in that order.
"""

from __future__ import annotations

import sys

from ser.cli import REQUIRED, Key, Spec, number, optional, parse, report_errors

COMMAND = "ser.figure2"
SPEC = Spec("the paper's Figure 2: a clean and a noisy 1-s spectrogram side by side", (
    Key("input", REQUIRED, "the speech recording (any rate, mono or stereo)", positional=True),
    Key("output", REQUIRED, "the figure to write (PNG, PDF or SVG)", positional=True),
    Key("noise", None, "a noise recording (empty: the package's synthetic noisy room)", optional(str)),
    Key("snr", 15.0, "SNR of the noisy panel", number(float, unit="dB")),
    Key("offset", 0.0, "start of the 1-s block in the recording",
        number(float, least=0, unit="seconds")),
    Key("seed", 0, "picks the noise segment", number(int)),
    Key("sample_rate", 16000, "analysis rate", number(int, least=1, unit="Hz")),
    Key("block_seconds", 1.0, "block length", number(float, above=0, unit="seconds")),
))


@report_errors
def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv, SPEC, COMMAND)
    from ser.figure2 import write_figure2

    write_figure2(**args)
    print(f"wrote {args['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
