"""`syndicate serve` really starts uvicorn with the app and the settings' port."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


def test_serve_command_answers_on_the_given_port(project: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "syndicate",
            "--config",
            str(project / "settings.toml"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60  # a start takes long on a loaded machine
        while True:
            assert process.poll() is None, process.stdout.read().decode()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/subscribe", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "syndicate serve did not come up"
                time.sleep(0.1)
        assert answer.status_code == 200 and "Subscribe to Notes from the Margin" in answer.text
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
