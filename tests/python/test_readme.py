"""The README's walkthrough, run as written: its shell blocks are taken from README.md itself and
run in order by bash against a real `hoso serve`, so that the README cannot drift from the
product.

The server is started as the walkthrough's `cargo run ... -- serve` line starts it (its
environment assignments included; `hoso serve`, data in ./data), on a free port instead of 50051
(HOSO_SERVER points the clients at it). `cargo` lines are left out: HOSO_BIN is the binary under
test.

The demo section's first block (gen, a signing key, a server of its own, catalogue, import,
figures, a signed disclosure, and its offline check) runs too, with three rewrites, each the
least that makes a script of what a person types:
- its port 50052 becomes a free one;
- after the `hoso serve ... &` line, the script waits for the server's tokens file, as a person
  starts typing the next line only once the server has said it is serving;
- the generated month is cut to its first 2,000 dossiers before `hoso import`: the whole month
  (65,260 dossiers, 476,320 commands) took 419 s to import with the debug binary on a shared
  2-core machine, too long for every test run; the commands are the README's, unchanged.
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def walkthrough_blocks() -> list:
    """The ```sh blocks between the walkthrough's heading and the next section."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## Walkthrough")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_walkthrough_runs_as_written(tmp_path):
    binary = Path(os.environ.get("HOSO_BIN") or ROOT / "target" / "debug" / "hoso")
    assert binary.is_file(), f"build the server first: {binary} is missing"
    blocks = walkthrough_blocks()
    assert len(blocks) >= 6, f"the walkthrough has {len(blocks)} shell blocks"
    lines = [line for block in blocks for line in block.splitlines()]
    serve = [line for line in lines if "cargo run" in line and line.rstrip().endswith("serve")]
    assert len(serve) == 1, f"the walkthrough starts its server once: {serve}"
    server_env = dict(
        word.split("=", 1) for word in shlex.split(serve[0].split("cargo run")[0]) if "=" in word
    )
    script = "\n".join(line for line in lines if "cargo " not in line)
    # The walkthrough reads docs/ from the repository's root, where it is run.
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSO_")}
    env.update(
        PATH=f"{binary.parent}:{env['PATH']}",
        HOSO_SERVER=f"http://127.0.0.1:{port}",
        HOSO_LOG="warn",
    )
    server = subprocess.Popen(
        [str(binary), "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env={**env, **server_env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "data" / "dev-tokens.txt").exists():
            assert server.poll() is None, "the server exited before serving"
            assert time.monotonic() < deadline, "the server did not start within 30 s"
            time.sleep(0.1)
        time.sleep(0.5)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"the walkthrough failed:\n{output}"
        # What the README says the commands answer.
        assert '"dueAt": "2026-07-07T10:00:00Z"' in output, output
        assert "PROVISIONAL calendar 2027" in output, output
        assert "Processing on time" in output, output
        assert "ok: " in output and "every hash chain matches" in output, output
        assert (tmp_path / "cong-khai-2026-06.html").is_file(), sorted(p.name for p in tmp_path.iterdir())
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def demo_block() -> str:
    """The demo section's first ```sh block."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## Demo")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.S)[0]


DEMO_DOSSIERS = 2000


def test_the_demo_runs_as_written_on_a_smaller_month(tmp_path):
    binary = Path(os.environ.get("HOSO_BIN") or ROOT / "target" / "debug" / "hoso")
    assert binary.is_file(), f"build the server first: {binary} is missing"
    block = demo_block()
    port = free_port()
    assert block.count("127.0.0.1:50052") == 2, block
    lines = []
    for line in block.replace("127.0.0.1:50052", f"127.0.0.1:{port}").splitlines():
        if line.startswith("hoso import sept.ndjson"):
            lines.append(f"head -n {DEMO_DOSSIERS} sept.ndjson > sept.head && mv sept.head sept.ndjson")
        lines.append(line)
        if line.startswith("hoso serve") and "&" in line:
            lines.append("until [ -s demo-data/dev-tokens.txt ]; do sleep 0.2; done; sleep 1")
    assert any(line.startswith("head -n") for line in lines), block
    assert any(line.startswith("until") for line in lines), block
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSO_")}
    env.update(PATH=f"{binary.parent}:{env['PATH']}", HOSO_LOG="warn")
    script = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", "\n".join(lines)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = script.communicate(timeout=600)
    finally:
        # The demo's server, should the script have stopped before the README stops it.
        try:
            os.killpg(script.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    assert script.returncode == 0, f"the demo failed:\n{output}"
    assert f"imported {DEMO_DOSSIERS} dossiers" in output and "0 lines rejected" in output, output
    assert "Processing on time" in output, output
    assert (tmp_path / "cong-khai-2025-09.html").is_file(), sorted(p.name for p in tmp_path.iterdir())
    assert "signature: valid, by the province's key" in output, output
    assert "verified: signature, log and figures" in output, output

