"""Export a trained classifier to ONNX: ``python -m ser.export ckpt=RUN out=model.onnx``.

The graph takes clean waveform blocks ``blocks`` (N, samples) float32 and returns class
``probabilities`` (N, C), the whole front-end inside, so it runs with onnxruntime alone (no
torch, librosa or numba). Class names and block settings travel in the model's metadata_props;
:class:`ser.inference.onnx_predictor.OnnxPredictor` reads them back.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ser.errors import SerError
from ser.inference.onnx_predictor import require_onnx

DEFAULT_OPSET = 18


def qualified_name(module: object) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def export_onnx(ckpt: str | Path, out: str | Path, opset: int = DEFAULT_OPSET) -> dict:
    """Write ``out`` from a checkpoint or run directory; returns the metadata written."""
    require_onnx()
    import onnx
    import torch

    from ser.export.onnx_graph import build_export_graph, example_blocks
    from ser.inference.checkpoint_predictor import load_block_classifier
    from ser.models.checkpoints import block_settings, find_checkpoint

    path = find_checkpoint(ckpt)
    model, hp = load_block_classifier(path)  # front-end + network, as the LightningModule has them
    sample_rate, block_seconds, pad = block_settings(hp)
    samples = int(round(block_seconds * sample_rate))
    graph = build_export_graph(model, samples)
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    # The TorchScript exporter (dynamo=False): it traces the conv1d STFT and the gathers in a
    # few seconds, and its deprecation and tracer warnings say nothing about this graph.
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, (example_blocks(2, samples),), str(out), dynamo=False,
                              input_names=["blocks"], output_names=["probabilities"],
                              dynamic_axes={"blocks": {0: "N"}, "probabilities": {0: "N"}},
                              opset_version=int(opset))
    except Exception as exc:
        raise SerError(f"{path} cannot be exported to ONNX opset {opset}: the front-end "
                       f"{qualified_name(graph.frontend)} or the network {qualified_name(graph.net)} "
                       f"({hp['model'].get('name')}) is not traceable: {str(exc).splitlines()[0][:300]}. "
                       "A front-end step whose running ops an exporter cannot follow switches to plain "
                       "tensor ops under ser.features.stft.exporting(). Try another opset= (17-20), "
                       "or use the checkpoint from Python.") from exc
    meta = {"classes": json.dumps(list(hp["classes"])), "sample_rate": str(sample_rate),
            "block_seconds": repr(float(block_seconds)),
            "pad_min_fraction": json.dumps(None if pad is None else float(pad)),
            "min_confidence": json.dumps(hp.get("min_confidence")),
            "features": type(model.frontend).__name__, "model": str(hp["model"].get("name")),
            "checkpoint": path.name}
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return meta
