"""A job entrypoint given a bad config prints the field errors as plain lines and exits 2 before Ray starts,
also when the values hold brackets and slashes (a --set list of absolute paths, as cluster jobs pass)."""

from __future__ import annotations

import subprocess

import pytest
from heads import REPO, VENV_BIN, last_lines, venv_env

pytestmark = pytest.mark.slow  # ~5 s: a Python start that imports the CLI


def test_a_field_error_next_to_a_path_list_is_printed_as_text_not_a_markup_crash(tmp_path):
    done = subprocess.run([str(VENV_BIN / "python"), "jobs/extract.py", "--config", "jobs/configs/extract.yaml",
                           "--set", f"videos=[{tmp_path}/videos]", "--set", "writers.min_size=0"],
                          cwd=REPO, env=venv_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert last_lines(done.stderr, 1) == ["  writers.min_size: Input should be greater than or equal to 1 (got 0)"]
    assert f"videos=[{tmp_path}/videos]" in done.stderr.replace("\n", "")  # the header names the --set values
