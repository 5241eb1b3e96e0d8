"""A describer outage is never the result (issue 12, defect 1): it fails the run (or warns under
the leaderboard), its features are provisional, and the next run — `--force` or not — asks the
endpoint again and recomputes every unit that used them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from fixtures.local_http import LocalServer, QuietHandler

from benchmark.cli import main
from benchmark.runner.config import load_config
from benchmark.runner.pipeline import run_experiment

pytestmark = pytest.mark.slow


class Endpoint(LocalServer):
    """Chat completions that fail with 503 while ``down`` (an outage), answer otherwise."""

    def __init__(self) -> None:
        self.down = True
        self.requests = 0
        outer = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"service unavailable")
                    return
                title = body["messages"][0]["content"][0]["text"].split("Product title: ")[1].split("\n")[0]
                data = json.dumps({"choices": [{"message": {"content": f"A photo of {title}."}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.serve(Handler, "/v1")


@pytest.fixture(scope="module")
def endpoint():
    with Endpoint() as e:
        yield e


def config(tmp: Path, url: str, **feature_params) -> Path:
    cfg = {
        "experiment": "outage",
        "dataset": {
            "name": "outage",
            "source": "demo",
            "demo": {"seed": 0, "n_items": 40, "n_users": 40, "min_interactions": 10, "max_interactions": 12},
        },
        "features": [
            {
                "name": "desc",
                "producer": "vlm4rec-text",
                "params": {
                    "describer": {"kind": "openai", "base_url": url, "lvlm": "m", "retries": 0, "timeout": 10},
                    "encoder": {"kind": "minilm"},
                    **feature_params,
                },
            }
        ],
        "models": [
            {"name": "VLM4Rec", "model": "vlm4rec", "params": {"feature": "desc"}},
            {"name": "Pop", "model": "popularity"},
        ],
        "evaluation": {"ks": [10], "metrics": ["recall"], "subsets": False},
        "statistics": {"n_resamples": 1000},
        "logging": {"logger": "none"},
        "results_dir": str(tmp / "results"),
        "cache_dir": str(tmp / "cache"),
    }
    path = tmp / "outage.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_an_outage_fails_the_run_loudly(endpoint, tmp_path, caplog) -> None:
    endpoint.down, endpoint.requests = True, 0
    rc = main(["run", str(config(tmp_path, endpoint.url)), "--logger", "none"])
    assert rc == 2 and endpoint.requests == 40
    (msg,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "described 0.0% of the items" in msg and "HTTP 503" in msg and "floor 90%" in msg
    assert not list((tmp_path / "cache").rglob("desc-*.json"))  # nothing cached as the result


def test_a_tolerated_outage_warns_and_is_redone_when_the_endpoint_is_back(endpoint, tmp_path) -> None:
    cfg = load_config(config(tmp_path, endpoint.url, on_low_coverage="warn"))
    endpoint.down, endpoint.requests = True, 0
    degraded = run_experiment(cfg)
    assert endpoint.requests == 40
    board = (degraded.run_dir / "leaderboard.md").read_text()
    assert "**Warnings**" in board and "described 0.0%" in board
    unit = json.loads((degraded.run_dir / "units" / "VLM4Rec.json").read_text())
    assert unit["features"]["desc"]["final"] is False
    # the endpoint is back: a plain re-run (same run directory) asks again and recomputes the unit
    endpoint.down, endpoint.requests = False, 0
    healed = run_experiment(cfg)
    assert healed.run_dir == degraded.run_dir and endpoint.requests == 40
    assert "VLM4Rec" in healed.units_run and "Pop" in healed.units_skipped
    assert "**Warnings**" not in (healed.run_dir / "leaderboard.md").read_text()
    unit = json.loads((healed.run_dir / "units" / "VLM4Rec.json").read_text())
    assert unit["features"]["desc"]["final"] is True
    assert healed.means["VLM4Rec"] != degraded.means["VLM4Rec"]
    # a further run asks nothing (all described) and reuses everything
    endpoint.requests = 0
    again = run_experiment(cfg)
    assert endpoint.requests == 0 and again.units_run == [] and again.means == healed.means
    # --force recomputes the features (and every unit) in a new directory; finished descriptions are kept
    forced = run_experiment(cfg, force=True)
    assert forced.run_dir != healed.run_dir and endpoint.requests == 0 and forced.means == healed.means
    assert sorted(forced.units_run) == ["Pop", "VLM4Rec"]
