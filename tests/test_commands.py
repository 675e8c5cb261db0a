"""Importing ``ser`` changes nothing global; the commands set up their process."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


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
