"""Part (g) of ``python -m ser.bench``: what a speech encoder costs to train, per family and mode.

For WavLM, HuBERT and wav2vec 2.0 at their base size (random weights: nothing is downloaded,
and speed does not depend on the weights' values), each in the two training modes of
``model.trainable_from`` (``head``: frozen encoder, the SUPERB protocol; ``encoder``: the
transformer fine-tuned, the convolutional encoder frozen): parameters, trained parameters,
optimiser steps/s and 1-s blocks/s of whole training steps (AdamW, batch of ``batch_size``
blocks; the median of ``steps`` steps after three warm-up steps), and the peak memory. Each
measurement runs in its own process, so its peak RSS is its own:
``python -m ser.commands.bench_speech family=wavlm mode=head`` prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

MODES = {"head": "frozen encoder", "encoder": "transformer fine-tuned"}
# The toy size quick=true measures (seconds), with every layer kind of the base models.
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


def measure(family: str, mode: str, batch: int, steps: int, tiny: bool, device: str) -> dict:
    """One family and mode, in this process: parameter counts, steps/s, peak memory."""
    from ser.bench.common import peak_rss_mib
    from ser.models.speech_encoders import FAMILIES
    from ser.models.speech_net import build_speech_encoder_net

    config_cls, _ = FAMILIES[family].classes()
    config = config_cls(**TINY) if tiny else config_cls()
    torch.manual_seed(0)
    net = build_speech_encoder_net(4, family, pretrained=False, trainable_from=mode,
                                   encoder_config=config.to_dict()).to(device)
    trained = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trained, lr=1e-4)
    rng = np.random.default_rng(0)
    blocks = torch.from_numpy(rng.standard_normal((batch, 16000)).astype(np.float32)).to(device)
    labels = torch.from_numpy(rng.integers(0, 4, batch)).to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(net(blocks), labels)
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up: the first steps fault in the heap and pick kernels
        step()
    times: list[float] = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))  # the median step: one step slowed by the machine's other load is not the figure
    return {"family": family, "mode": mode, "batch": batch, "device": device,
            "size": "tiny" if tiny else "base",
            "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
            "trained_m": sum(p.numel() for p in trained) / 1e6,
            "steps_per_s": 1.0 / seconds, "blocks_per_s": batch / seconds,
            "peak_rss_mib": peak_rss_mib(),
            "gpu_max_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None}


def _run_once(family: str, mode: str, batch: int, steps: int, tiny: bool, device: str) -> dict:
    from ser.errors import SerError

    cmd = [sys.executable, "-m", "ser.commands.bench_speech", f"family={family}", f"mode={mode}",
           f"batch_size={batch}", f"steps={steps}", f"device={device}", f"tiny={str(tiny).lower()}"]
    done = subprocess.run(cmd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    if done.returncode != 0:
        # a SerError is one paragraph after "error:", anything else ends in its last line
        err = done.stderr.strip()
        tail = " ".join(err.rpartition("error: ")[2].split()) if "error: " in err else (
            err.splitlines() or ["no output"])[-1]
        raise SerError(f"(g) speech encoder {family} ({mode}) failed to run: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def speech_encoder_figures(families: list[str], batch: int, steps: int, tiny: bool,
                           device: str, runs: int = 2) -> list[str]:
    """The printed lines of part (g): one process per family, mode and run.

    The runs go round-robin over every family and mode, and the fastest run of each is the
    figure (the others are printed beside it): on a shared machine another job's threads can
    slow torch's several-fold while they compete for the cores, never speed it up.
    """
    configs = [(family, mode) for family in families for mode in MODES]
    results: dict[tuple[str, str], list[dict]] = {c: [] for c in configs}
    for _ in range(max(1, runs)):
        for family, mode in configs:
            results[(family, mode)].append(_run_once(family, mode, batch, steps, tiny, device))
    lines = []
    for (family, mode), found in results.items():
        m = max(found, key=lambda r: r["steps_per_s"])
        others = sorted((r["steps_per_s"] for r in found), reverse=True)[1:]
        spread = f" (other runs: {', '.join(f'{v:.3f}' for v in others)})" if others else ""
        gpu = f", GPU max allocated {m['gpu_max_mib']:.0f} MiB" if m["gpu_max_mib"] else ""
        lines.append(f"(g) speech encoder {family} {m['size']}, {MODES[mode]} "
                     f"(trainable_from={mode}; batch {batch} x 1 s, {device.upper()}): "
                     f"{m['params_m']:.2f} M parameters, {m['trained_m']:.2f} M trained; "
                     f"{m['steps_per_s']:.3f} steps/s = {m['blocks_per_s']:.1f} blocks/s, fastest "
                     f"of {len(found)} run(s){spread}; peak RSS {m['peak_rss_mib']:.0f} MiB{gpu}")
    return lines
