"""What an evaluation records about where it ran: the git commit checked out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PRINT_COMMIT = "from dotevals.storage.provenance import git_commit; print(git_commit())"


def output(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def commit_seen_from(folder: Path, path: str) -> str:
    """What ``git_commit()`` gives in a fresh process in ``folder``, with ``PATH`` set."""
    env = {**os.environ, "PATH": path}
    env.pop("GIT_DIR", None)
    return output([sys.executable, "-c", PRINT_COMMIT], folder, env)


def test_outside_a_repository_git_is_not_started(tmp_path: Path):
    probe = tmp_path / "bin"
    probe.mkdir()
    (probe / "git").write_text(f"#!/bin/sh\ntouch {tmp_path / 'git-started'}\nexit 1\n")
    (probe / "git").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    assert commit_seen_from(work, f"{probe}{os.pathsep}{os.environ['PATH']}") == "None"
    assert not (tmp_path / "git-started").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_inside_a_repository_the_commit_is_recorded(tmp_path: Path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    output([*git, "init", "-q"], tmp_path)
    output([*git, "commit", "-q", "--allow-empty", "-m", "first"], tmp_path)
    (tmp_path / "sub").mkdir()
    head = output(["git", "rev-parse", "HEAD"], tmp_path)
    assert commit_seen_from(tmp_path / "sub", os.environ["PATH"]) == head
