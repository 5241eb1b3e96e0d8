"""Every user error is one line and exit code 2, never a traceback (issue 12, defect 12)."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from benchmark.cli import main


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_directory_given_as_the_config(tmp_path: Path, caplog) -> None:
    assert main(["run", str(tmp_path)]) == 2
    assert len(errors(caplog)) == 1 and "is a directory" in errors(caplog)[0]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "demo", "-o", "seeds=[0,1"], "not valid YAML"),
        (["data", "prepare", "--release", "2023", "--reviews", "x", "--param", "a=[1", "--out", "o"], "not valid YAML"),
        (
            [
                "run",
                "demo",
                "-o",
                "dataset.source=files",
                "-o",
                "dataset.release='2023'",
                "-o",
                "dataset.reviews=/no/such",
            ],
            "does not exist",
        ),
    ],
)
def test_bad_values_on_the_command_line(argv: list[str], needle: str, caplog) -> None:
    assert main(argv) == 2
    assert len(errors(caplog)) == 1 and needle in errors(caplog)[0]


def test_full_disk_is_one_line(monkeypatch, caplog) -> None:
    import benchmark.runner.pipeline as pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/results/demo/x/units/A.parquet")

    monkeypatch.setattr(pipeline, "run_experiment", full)
    assert main(["run", "demo"]) == 2
    (msg,) = errors(caplog)
    assert "No space left on device" in msg and "A.parquet" in msg and "free some disk space" in msg
