"""``python -m ser.bench --quick`` runs and prints every figure (not a speed test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def _figure(text: str, pattern: str) -> float:
    match = re.search(pattern, text)
    assert match, f"no line matching {pattern!r} in:\n{text}"
    return float(match.group(1))


def test_quick_benchmark_prints_every_figure():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "ser.bench", "--quick"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    reference = _figure(out, rf"\(a\) reference.*?: ({NUMBER}) blocks/s")
    # the pipeline training uses comes first; the torch-ops variant is printed beside it
    ours = _figure(out, rf"\(b\) SpectrogramImage, CPU, numba: ({NUMBER}) blocks/s")
    torch_ops = _figure(out, rf"\(b\) SpectrogramImage, CPU, torch-ops: ({NUMBER}) blocks/s")
    assert reference > 0 and ours > 0 and torch_ops > 0
    assert re.search(r"\(c\) SpectrogramImage, GPU", out)
    ratio = _figure(out, rf"ratio to \(a\), blocks/s: b/a numba ({NUMBER})x")
    assert abs(ratio - ours / reference) <= 0.05 * ratio + 0.1
    assert _figure(out, rf"ratio to \(a\), CPU time per block: a/b numba ({NUMBER})x") > 0
    mean = _figure(out, rf"difference vs \(a\).*mean ({NUMBER}) \(")
    p99 = _figure(out, rf"difference vs \(a\).*p99 ({NUMBER}) \(")
    assert 0 <= mean <= 1 / 255 and 0 <= p99 <= 1
    assert "allocator: M_MMAP_MAX=0" in out
    for model in ("alexnet", "efficientnet_lite0"):
        ours = _figure(out, rf"\(d\) ser, {model} .*?: ({NUMBER}) training images/s")
        share = _figure(out, rf"\(d\) ser, {model} .*?\(share ({NUMBER})\)")
        assert ours > 0 and 0 < share < 1
        assert _figure(out, rf"\(d\) ser, {model} .*system ({NUMBER}) s") >= 0
        rendered = _figure(out, rf"\(d\) ImageFolder way, {model} .*?= ({NUMBER}) blocks/s")
        theirs = _figure(out, rf"\(d\) ImageFolder way, {model} .*?: ({NUMBER}) training images/s")
        assert rendered > 0 and theirs > 0
        ratio = _figure(out, rf"ratio ser / ImageFolder, {model}: training images/s ({NUMBER})x")
        assert abs(ratio - ours / theirs) <= 0.05 * ratio + 0.02
        assert _figure(out, rf"ratio ser / ImageFolder, {model}: .*with its rendering ({NUMBER})x") > 0
        first = _figure(out, rf"\(e\) trunk cache, {model} .*first epoch ({NUMBER}) s")
        later = _figure(out, rf"\(e\) trunk cache, {model} .*later epochs ({NUMBER}) s")
        assert first > 0 and later > 0
        assert _figure(out, rf"\(e\) trunk cache, {model} .*?: ({NUMBER})x per epoch") > 0
    assert "(f) PyTorch against onnxruntime: not measured (give ckpt=RUN" in out
    assert _figure(out, rf"peak memory: RSS ({NUMBER}) MiB") > 0


def test_bad_speech_folder_is_one_paragraph(tmp_path):
    from ser.commands.bench import main

    with pytest.raises(SystemExit) as stopped:
        main(["--quick", "--speech", str(tmp_path)])
    assert stopped.value.code == 2


def test_quick_speech_encoder_part_prints_parameters_speed_and_memory():
    pytest.importorskip("transformers")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "ser.bench", "--quick", "--parts", "g",
                           "--encoders", "hubert"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    trained = {}
    for mode in ("head", "encoder"):
        line = rf"\(g\) speech encoder hubert tiny, .*trainable_from={mode};"
        params = _figure(done.stdout, line + rf".*?: ({NUMBER}) M parameters")
        trained[mode] = _figure(done.stdout, line + rf".*? ({NUMBER}) M trained")
        assert 0 < trained[mode] <= params
        assert _figure(done.stdout, line + rf".*? ({NUMBER}) steps/s") > 0
        assert _figure(done.stdout, line + rf".*peak RSS ({NUMBER}) MiB") > 0
    assert trained["head"] < trained["encoder"]  # a frozen encoder trains only the head
