"""Each health check on hand-made unit records: what it flags, what it leaves alone."""

from __future__ import annotations

from benchmark.health import (
    HealthConfig,
    ModelEvidence,
    check_run,
    early_stop,
    feature_coverage,
    not_above_reference,
    thin_validation,
)

CFG = HealthConfig()


def trained(seed: int, curve: list[float], max_epochs: int = 50, patience: int = 3, **extra) -> dict:
    history = [{"epoch": e, "recall@20": v} for e, v in enumerate(curve, start=1)]
    best = max(history, key=lambda h: h["recall@20"])["epoch"]
    info = {"valid_history": history, "best_epoch": best, "train": {"max_epochs": max_epochs, "patience": patience}}
    return {"seed": seed, "registered_model": "bpr", "model_info": info, **extra}


def test_early_stop_flags_barely_trained_and_first_window_stops():
    healthy = ModelEvidence("ok", [trained(0, [0.1, 0.2, 0.3, 0.4, 0.35, 0.3, 0.3])])
    assert early_stop(healthy, CFG) == []
    # best at epoch 2, then three checks without improvement: stopped at epoch 5 < 50
    early = early_stop(
        ModelEvidence("m", [trained(0, [0.1, 0.2, 0.1, 0.1, 0.1]), trained(1, [0.1, 0.2, 0.1, 0.1, 0.1])]), CFG
    )
    assert [w.message for w in early] == ["selected epoch 2 (seeds 0, 1) (≤ 2): barely trained"]
    # flat from the start (lr = 0): best at the first check, stopped after its patience window
    flat = early_stop(ModelEvidence("m", [trained(0, [0.1, 0.1, 0.1, 0.1])]), CFG)
    assert [w.check for w in flat] == ["early_stop", "early_stop"] and "first patience window" in flat[1].message
    # a run that used every epoch did not stop early, even if its best is the first check
    assert len(early_stop(ModelEvidence("m", [trained(0, [0.3, 0.1, 0.1], max_epochs=3)]), CFG)) == 1
    # training-free models have no curve
    assert early_stop(ModelEvidence("pop", [{"seed": None, "model_info": {"class": "x"}}]), CFG) == []


def test_not_above_reference_compares_the_seed_mean_on_validation():
    refs = {"random": {"recall@20": 0.15}, "popularity": {"recall@20": 0.43}}
    rec = lambda v, model="bpr": {"registered_model": model, "valid": {"recall@20": v}}  # noqa: E731
    assert not_above_reference(ModelEvidence("m", [rec(0.5), rec(0.44)]), refs, "recall@20") == []
    w = not_above_reference(ModelEvidence("m", [rec(0.45), rec(0.41)]), refs, "recall@20")  # mean 0.43 = popularity
    assert len(w) == 1 and w[0].message == "validation recall@20 0.4300 is not above popularity 0.4300"
    w = not_above_reference(ModelEvidence("m", [rec(0.141)]), refs, "recall@20")
    assert w[0].details["references"] == {"random": 0.15, "popularity": 0.43}
    assert not_above_reference(ModelEvidence("Pop", [rec(0.43, "popularity")]), refs, "recall@20") == []
    assert not_above_reference(ModelEvidence("m", [rec(0.1)]), {}, "recall@20") == []


def test_feature_coverage_below_the_floor():
    m = ModelEvidence("V", [{"features_used": {"clip_image": 0.78, "text": 1.0}}])
    w = feature_coverage(m, CFG)
    assert len(w) == 1 and w[0].message.startswith("feature clip_image covers 78.0% of the items (< 90%)")
    assert feature_coverage(m, HealthConfig(coverage_floor=0.5)) == []


def test_thin_validation_says_how_noisy_selection_is():
    selects = ModelEvidence("B", [trained(0, [0.1, 0.2, 0.3])], valid_se=0.021)
    thin = {"n_users": 453, "items_per_user": 1.01}
    w = thin_validation(selects, thin, CFG, "recall@20")
    assert w[0].message == (
        "selected on a thin validation part: 453 users (< 1000), 1.01 items each; the standard error of its "
        "validation recall@20 is 0.0210, so settings closer than ≈ 0.0420 (2 SE) are not told apart"
    )
    assert thin_validation(selects, {"n_users": 5000, "items_per_user": 1.0}, CFG, "recall@20") == []
    tuned = ModelEvidence("V", [{"search": {"trials": 3}}])
    assert len(thin_validation(tuned, thin, CFG, "recall@20")) == 1
    assert thin_validation(ModelEvidence("Pop", [{"model_info": {}}]), thin, CFG, "recall@20") == []


def test_check_run_orders_models_then_checks():
    models = [
        ModelEvidence("A", [trained(0, [0.1, 0.1, 0.1, 0.1], valid={"recall@20": 0.1}, features_used={"f": 0.5})]),
        ModelEvidence("B", [trained(0, [0.1, 0.2, 0.3, 0.4, 0.5], valid={"recall@20": 0.9})]),
    ]
    out = check_run(models, {"random": {"recall@20": 0.15}}, {"n_users": 5000, "items_per_user": 1.0}, CFG, "recall@20")
    assert [(w.model, w.check) for w in out] == [
        ("A", "early_stop"),
        ("A", "early_stop"),
        ("A", "not_above_reference"),
        ("A", "feature_coverage"),
    ]
