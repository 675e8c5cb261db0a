"""How much of a corpus the speech gate would leave out, without training: the corpus is cut into
1-s blocks as train.py cuts it (cached), the detector runs once (cached beside the blocks, as
``data.min_speech`` caches it), and a Markdown table gives per class the blocks, the blocks
left out at each ``min_speech`` and the utterances that keep only their best block. A second
table says what ``noise.snr_reference=active`` changes: how many dB louder the noise of a block
is mixed (the block's active-speech level over its mean level), by share of speech.
``python -m ser.commands.speech_census manifest=CSV [vad=silero] [min_speech=0.25,0.5]`` prints
them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser.errors import SerError

SHARE_BINS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0001))


def census(manifest: str | Path, vad: str, thresholds: list[float], cache_dir: str | None,
           sample_rate: int = 16000) -> str:
    """The two Markdown tables (see the module docstring)."""
    from ser.audio.speech_activity import active_level_offset_db
    from ser.data.blocks import build_blocks
    from ser.data.manifest import read_manifest
    from ser.data.speech_blocks import BlockGate, block_speech
    from ser.inference.speech_gate import detector_from_name

    table = read_manifest(manifest)
    blocks = build_blocks(table, sample_rate=sample_rate, cache_dir=cache_dir, progress=False)
    detector = detector_from_name(vad, sample_rate)
    if detector is None:
        raise SerError("vad=none finds no speech to count: choose vad=silero, webrtc or energy.")
    from ser.configs import conf_dir
    import yaml

    settings = yaml.safe_load((conf_dir() / "vad" / f"{vad}.yaml").read_text())
    speech = block_speech(blocks, detector, settings, cache_dir, progress=False)
    n_cls = len(blocks.classes)
    per_class = np.bincount(blocks.labels, minlength=n_cls)
    gates = [BlockGate(blocks, speech, t, vad) for t in thresholds]
    head = ["Class", "Blocks", *(f"left out at {t:g}" for t in thresholds)]
    rows = []
    for c, name in enumerate([*blocks.classes, "Total"]):
        count = int(per_class.sum()) if c == n_cls else int(per_class[c])
        cells = []
        for g in gates:
            out = g.dropped_per_class()
            lost = int(out.sum()) if c == n_cls else int(out[c])
            cells.append(f"{lost:,} ({100 * lost / max(count, 1):.1f} %)")
        rows.append([name, f"{count:,}", *cells])
    rescued = ", ".join(f"{len(g.rescued)} at {g.min_speech:g}" for g in gates)
    lines = [f"**{table.name}** ({len(table)} utterances, {len(blocks):,} blocks of 1 s; vad={vad}; "
             f"mean share of speech per block {100 * float(speech.fraction.mean()):.1f} %; "
             f"utterances keeping only their best block: {rescued})", "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    offsets = np.array([active_level_offset_db(blocks.as_float(i), speech.mask(i)) for i in range(len(blocks))])
    lines += ["", "| Share of speech in the block | Blocks | Noise louder by (dB), median [10th, 90th percentile] |",
              "|---|---:|---|"]
    for lo, hi in SHARE_BINS:
        pick = (speech.fraction >= lo) & (speech.fraction < hi)
        if pick.any():
            q = np.percentile(offsets[pick], [50, 10, 90])
            lines.append(f"| {100 * lo:.0f}–{min(100, 100 * hi):.0f} % | {int(pick.sum()):,} | "
                         f"{q[0]:.1f} [{q[1]:.1f}, {q[2]:.1f}] |")
    q = np.percentile(offsets, [50, 10, 90])
    lines.append(f"| all | {len(blocks):,} | {q[0]:.1f} [{q[1]:.1f}, {q[2]:.1f}] |")
    return "\n".join(lines)
