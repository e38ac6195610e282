"""`buf lint` on proto/ with the repository's buf.yaml (buf comes from the buf-bin package of
tests/python/requirements.txt, installed next to this Python)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_proto_files_pass_buf_lint():
    buf = os.path.join(os.path.dirname(sys.executable), "buf")
    if not os.access(buf, os.X_OK):
        pytest.fail(
            f"no buf executable at {buf}: install tests/python/requirements.txt (buf-bin) "
            "into the virtual environment that runs pytest",
            pytrace=False,
        )
    result = subprocess.run(
        [buf, "lint"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"buf lint exited with {result.returncode}:\n{output}"
