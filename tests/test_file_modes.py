"""Files written whole-or-not-at-all keep the permissions of any file the user writes."""

import os
import stat

from ser.atomic import write_json_atomic


def test_atomic_files_get_the_users_umask_not_tempfiles_0600(tmp_path):
    # on a shared machine collaborators read each other's runs: mkstemp's 0600 would lock them out
    mask = os.umask(0o022)
    os.umask(mask)
    path = write_json_atomic(tmp_path / "metrics.json", {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
