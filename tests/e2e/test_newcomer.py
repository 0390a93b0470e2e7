"""A newcomer's first hour, on a fresh copy of the repository: the README's commands, then the next
steps `make demo` prints, each run as printed; any failing command or Python traceback fails it.

The copy is a `git clone` of this checkout's HEAD into a temporary folder, with no data and no
PARTNERSHIP_* environment. It shares this checkout's virtual environment (a symlinked `.venv`, and
`make -o` so that make does not reinstall into it): installing a second one would take minutes and
the network, and tests nothing of the product. The clone's own code is the one run: the shared
environment's editable install is overridden by PYTHONPATH, which the test checks first.

`make demo PRESET=small` (documented in the README) stands for `make demo`, whose district preset
takes many minutes; `make test` is this suite itself, so it is not run again from here."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SKIPPED = {"make test": "the suite itself"}
SERVES = ("make dev", " dev ")  # commands that serve until stopped: the first runs until the UI answers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    root = tmp_path_factory.mktemp("newcomer") / "partnership"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(PROJECT), str(root)], check=True, timeout=300)
    (root / ".venv").symlink_to(PROJECT / ".venv")
    stamps = list((PROJECT / ".venv").glob(".installed-*"))
    assert stamps, "the shared environment is installed (make install)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTNERSHIP_", "DAGSTER_", "PYTEST"))}
    env.update({"PYTHONPATH": str(root), "COLUMNS": "80", "GX_ANALYTICS_ENABLED": "false"})
    found = subprocess.run([str(root / ".venv" / "bin" / "python"), "-c", "import orchestration; print(orchestration.__file__)"],
                           cwd=root, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(found).is_relative_to(root), f"the clone's code must be the one run, not {found}"
    return root, env


def _make(cmd: str, root: Path) -> str:
    """`make X` as `make -o <the install stamp> X`: the shared environment is not reinstalled."""
    if not cmd.startswith("make "):
        return cmd
    cksum = subprocess.run("cat requirements.lock pyproject.toml Makefile | cksum", shell=True, cwd=root,
                           capture_output=True, text=True, check=True).stdout.split()[0]
    return f"make -o .venv/.installed-{cksum} {cmd[5:]}"


def _run(cmd: str, root: Path, env: dict, timeout: int = 1500) -> str:
    cmd = _make(cmd, root)
    done = subprocess.run(cmd, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"`{cmd}` failed ({done.returncode}):\n{out[-4000:]}"
    assert "Traceback" not in out, f"`{cmd}` printed a traceback:\n{out[-4000:]}"
    return out


def _serve(cmd: str, root: Path, env: dict) -> str:
    """Start a command that serves the UI, on a free port; wait until its code location is loaded; stop it."""
    port = _free_port()
    cmd = re.sub(r"--port \d+", f"--port {port}", cmd) if "--port" in cmd else f"{cmd} PORT={port}"
    cmd = _make(cmd, root)
    log = root.parent / f"serve-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, shell=True, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    query = b'{"query": "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { __typename } } } } }"}'
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as resp:
                    body = resp.read().decode()
                if "RepositoryLocation" in body:
                    break
                assert "PythonError" not in body, f"`{cmd}`: the code location failed to load:\n{log.read_text()[-3000:]}"
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, f"`{cmd}` did not come up:\n{log.read_text()[-3000:]}"
            time.sleep(2)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    started = text[:text.find("KeyboardInterrupt")] if "KeyboardInterrupt" in text else text  # stopping is not starting
    assert "Traceback" not in started, f"`{cmd}` printed a traceback while starting:\n{started[-4000:]}"
    return text


def _readme_commands() -> list[str]:
    text = (PROJECT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            cmd = line.split("  #")[0].strip()
            if cmd:
                lines.append(cmd)
    return lines


def test_the_readme_and_the_demo_s_printed_next_steps_work_as_printed_on_a_fresh_clone(clone):
    root, env = clone
    commands = _readme_commands()
    assert commands[0] == "make demo" and "make test" in commands
    demo = _run("make demo PRESET=small", root, env)

    landed = sum(1 for p in (root / "data" / "landing").rglob("*") if p.is_file())
    assert f"({landed} files)" in demo, "the demo says how many files landed"
    for stage in ("registering deliveries", "extract 1 of 12: ", "extract 12 of 12: ", "linkage", "dbt build (",
                  " nodes done", "release falls-board", "board pack falls-board"):
        assert stage in demo, f"the night's progress names the stage {stage!r}"
    assert "…" not in demo, "nothing is cut at 80 columns"
    quality = json.loads(next((root / "data" / "releases" / "falls-board").glob("*/data_quality.json")).read_text())
    overdue = {e["contract"]: e["overdue"] for a in quality["agencies"] for e in a["extracts"] if e["overdue"]}
    assert overdue == {}, f"the demo runs as of its data's last day: nothing is falsely overdue ({overdue})"

    printed = [line.strip()[2:] for line in demo.splitlines() if line.strip().startswith("$ ")]
    assert printed, "the demo prints its next steps"
    ran, served = set(), False
    for cmd in printed + [c for c in commands if c not in ("make demo", *SKIPPED)]:
        key = re.sub(r"\S*/partnership\b", "partnership", cmd)  # the same command, however its path is written
        if key in ran:
            continue
        ran.add(key)
        if any(s in f" {cmd} " for s in SERVES):
            if served:  # one UI start is enough (minutes under load); the others are checked by make's dry run
                _run(f"{cmd} --dry-run" if cmd.startswith("make ") else f"{cmd} --help", root, env)
                continue
            _serve(cmd, root, env)
            served = True
            continue
        out = _run(cmd, root, env)
        words = shlex.split(cmd)
        if words[-1] == "run":
            assert "no new deliveries" in out, "a night with nothing new says so, not the first night's totals"
        if "releases" in words:
            assert "Identifiable: only for the named recipient" in out and "falls-analysts  pseudonymised" in out
        if "query" in words:
            assert re.search(r"\b[1-9][0-9]*\b", out), out
    assert served and any(c.endswith(" run") for c in ran)
