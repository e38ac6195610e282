"""Fixtures for driving the hoso API from Python, with stubs generated from proto/.

`pb` generates the Python modules of proto/hoso/v1/*.proto with grpc_tools' protoc into a
temporary directory once per session; `server` starts the real `hoso` binary (HOSO_BIN, default
target/debug/hoso) on a fresh data directory and an ephemeral port, and stops it with SIGTERM.

    python3 -m venv /tmp/pyenv && /tmp/pyenv/bin/pip install -r tests/python/requirements.txt
    cargo build -p hoso && /tmp/pyenv/bin/python -m pytest -q tests/python
"""

import importlib
import importlib.resources
import os
import selectors
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"

#: The handling agency the development agency officer belongs to.
OWN_AGENCY = "000.00.04.G18"
#: The roles of the development tokens, as named in dev-tokens.txt.
ROLES = ("desk_officer", "agency_officer", "auditor", "operator")

STARTUP_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 30


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The generated modules: pb.dossier, pb.desk, pb.audit, pb.admin, pb.reference (messages) and
    pb.dossier_grpc, pb.desk_grpc, pb.audit_grpc, pb.admin_grpc, pb.reference_grpc (stubs)."""
    out = tmp_path_factory.mktemp("pb")
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    protos = sorted(str(p.relative_to(PROTO)) for p in (PROTO / "hoso" / "v1").glob("*.proto"))
    assert protos, f"no .proto files under {PROTO / 'hoso' / 'v1'}"
    # In a child process, as `python -m grpc_tools.protoc` would be run by hand: protoc's
    # diagnostics go to its stderr, and a failure cannot take the test process with it.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ],
        cwd=PROTO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"protoc failed:\n{result.stderr}"
    sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    modules = {}
    for name in ("dossier", "desk", "audit", "admin", "reference"):
        modules[name] = importlib.import_module(f"hoso.v1.{name}_pb2")
        modules[f"{name}_grpc"] = importlib.import_module(f"hoso.v1.{name}_pb2_grpc")
    yield SimpleNamespace(**modules)
    sys.path.remove(str(out))


@dataclass
class Server:
    """A running `hoso serve`."""

    process: subprocess.Popen
    addr: str
    data_dir: Path
    tokens: dict = field(default_factory=dict)
    channels: list = field(default_factory=list)

    def channel(self) -> grpc.Channel:
        channel = grpc.insecure_channel(self.addr)
        self.channels.append(channel)
        return channel

    def metadata(self, role):
        """`authorization: Bearer <token>` for a development role; no metadata for None."""
        if role is None:
            return ()
        return (("authorization", f"Bearer {self.tokens[role]}"),)


def _hoso_bin() -> Path:
    path = Path(os.environ.get("HOSO_BIN") or ROOT / "target" / "debug" / "hoso")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"the hoso server binary {path} is missing or not executable: build it with "
            "`cargo build -p hoso`, or point HOSO_BIN at one",
            pytrace=False,
        )
    return path


def _first_line(process: subprocess.Popen) -> str:
    """The server's first stdout line, within STARTUP_TIMEOUT_S."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=STARTUP_TIMEOUT_S):
            process.kill()
            process.wait()
            pytest.fail(f"the server printed nothing within {STARTUP_TIMEOUT_S} s", pytrace=False)
    return process.stdout.readline().decode("utf-8", "replace")


def _read_tokens(data_dir: Path) -> dict:
    tokens = {}
    for line in (data_dir / "dev-tokens.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or " " not in line:
            continue
        role, token = line.split(" ", 1)
        if role in ROLES:
            tokens[role] = token.strip()
    missing = [r for r in ROLES if r not in tokens]
    assert not missing, f"no development token for {missing} in {data_dir / 'dev-tokens.txt'}"
    return tokens


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The real server on a fresh data directory; SIGTERM (then SIGKILL after 30 s) at the end."""
    binary = _hoso_bin()
    data_dir = tmp_path_factory.mktemp("hoso-data")
    env = {k: v for k, v in os.environ.items() if k != "HOSO_CONFIG"}
    env["HOSO_LOG"] = "warn"
    process = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    line = _first_line(process)
    prefix = "hoso: serving on "
    if not line.startswith(prefix):
        process.kill()
        process.wait()
        pytest.fail(f"unexpected first line from the server: {line!r}", pytrace=False)
    # Keep draining stdout so that the server never blocks on a full pipe.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    running = Server(process=process, addr=line[len(prefix) :].strip(), data_dir=data_dir)
    try:
        running.tokens = _read_tokens(data_dir)
        yield running
    finally:
        for channel in running.channels:
            channel.close()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"the server did not stop within {SHUTDOWN_TIMEOUT_S} s of SIGTERM")
        assert code == 0, f"the server exited with {code} after SIGTERM"
