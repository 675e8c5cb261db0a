"""``python -m ser.figure2``: the paper's Figure 2 (clean vs noisy spectrogram), and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_spectrogram import SR, generated_speech  # noqa: F401  (module fixture)


def test_cli_writes_figure(tmp_path, generated_speech):
    import soundfile as sf
    from PIL import Image

    from ser.commands.figure2 import main

    wav = tmp_path / "speech.wav"
    sf.write(wav, np.concatenate([generated_speech[0], generated_speech[1]]), SR)
    out = tmp_path / "figure.png"
    assert main([str(wav), str(out), "--snr", "15", "--offset", "0.5"]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 300
    # the key=value style of every ser command, the same figure
    again = tmp_path / "again.png"
    assert main([f"input={wav}", f"output={again}", "snr=15", "offset=0.5"]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_cli_bad_input_is_one_paragraph(tmp_path, capsys):
    from ser.commands.figure2 import main

    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "missing.wav"), str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("error:") == 1
    assert "missing.wav" in err and "Traceback" not in err
