"""One command style: every command installed as a console script, the commands other than
train and evaluate reading ``key=value`` through one parser (older ``--flag`` forms too), and
importing ``ser`` changing nothing global. tests/test_command_line.py checks each command's
``--help`` and errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.utils import get_object

from ser.cli import parse
from ser.errors import SerError
from tests.conftest import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_every_console_script_names_a_command():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"ser-train", "ser-evaluate", "ser-predict", "ser-listen", "ser-serve",
                            "ser-export", "ser-bench", "ser-figure2"}
    for target in scripts.values():
        module, _, function = target.partition(":")
        assert callable(get_object(f"{module}.{function}")), target


def test_key_values_and_the_older_flags_and_positionals_read_alike():
    from ser.commands.bench import SPEC as BENCH
    from ser.commands.figure2 import SPEC as FIGURE

    args = parse(["quick=true", "trunk_chunk=0", "--parts", "de", "encoder-batch=4"], BENCH, "ser.bench")
    assert args["quick"] and args["trunk_chunk"] == 0 and args["parts"] == "de" and args["encoder_batch"] == 4
    assert not parse(["quick=false"], BENCH, "ser.bench")["quick"]
    assert parse(["--quick", "--trunk-chunk=8"], BENCH, "ser.bench")["trunk_chunk"] == 8
    args = parse(["output=b.png", "input=a.wav", "snr=10"], FIGURE, "ser.figure2")
    assert (args["input"], args["output"], args["snr"]) == ("a.wav", "b.png", 10.0)
    assert parse(["a.wav", "b.png", "--snr", "10"], FIGURE, "ser.figure2") == args
    # a path that holds "=" is given with its key
    assert parse(["input=fold=1/a.wav", "b.png"], FIGURE, "ser.figure2")["input"] == "fold=1/a.wav"
    with pytest.raises(SerError, match="Unknown argument 'colour=red'"):
        parse(["a.wav", "b.png", "colour=red"], FIGURE, "ser.figure2")


def test_importing_ser_changes_nothing_global():
    code = ("import warnings; before = list(warnings.filters); import ser, ser.models.module, ser.allocator; "
            "import ser.training.runner; "
            "mine = [f for f in warnings.filters if f not in before and 'eval mode' in str(f[1])]; "
            "print(ser.allocator._applied, len(mine))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True).stdout.split()
    assert out == ["None", "0"]


def test_the_entry_points_set_up_the_process():
    code = ("import warnings; from ser.cli import prepare_process; prepare_process(); import ser.allocator; "
            "print(bool(ser.allocator._applied is not None), "
            "any('eval mode' in str(f[1]) for f in warnings.filters))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True).stdout.split()
    assert out == ["True", "True"]
