"""MMRec compatibility shims: each one needed (the MMRec line fails without it, checked in a fresh
process where that matters) and sufficient (the line runs with it and gives the right numbers)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from baselines import mmrec_compat as compat
from benchmark.errors import ConfigError
from benchmark.evaluation import metrics as M

REPO = Path(__file__).resolve().parents[2]


def run_fresh(code: str, src: Path) -> subprocess.CompletedProcess:
    """``code`` in a new interpreter with MMRec's src importable and no shim applied."""
    prelude = f"import sys; sys.path.insert(0, {str(src)!r}); sys.path.insert(0, {str(REPO)!r})\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True)


def assert_needed(code: str, src: Path, expected: str) -> None:
    """``code`` fails in a fresh process with ``expected`` in its error, unless it prints NOT-NEEDED."""
    bare = run_fresh(code, src)
    if "NOT-NEEDED" in bare.stdout:
        return  # this environment does not need the shim (an older library): sufficiency is still checked
    assert bare.returncode != 0 and expected in bare.stderr, bare.stderr[-2000:]


# ------------------------------------------------------------------------------------- locating
def test_locate_from_param_env_and_root(mmrec_src, monkeypatch):
    monkeypatch.delenv(compat.ENV_VAR, raising=False)
    assert compat.locate_mmrec(mmrec_src) == mmrec_src.resolve()
    assert compat.locate_mmrec(mmrec_src.parent) == mmrec_src.resolve()  # the checkout's root works too
    monkeypatch.setenv(compat.ENV_VAR, str(mmrec_src))
    assert compat.locate_mmrec() == mmrec_src.resolve()


def test_missing_checkout_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(compat.ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match=r"git clone https://github.com/enoche/MMRec.*VLM4REC_MMREC_SRC"):
        compat.locate_mmrec()
    with pytest.raises(ConfigError, match="is not MMRec's src/ folder"):
        compat.locate_mmrec(tmp_path)


def test_model_names_and_unknown_model(mmrec_src):
    names = compat.list_models(mmrec_src)
    assert {"FREEDOM", "SMORE", "LGMRec", "BM3", "LATTICE", "DualGNN", "SELFCFED_LGN"} <= set(names)
    with pytest.raises(ConfigError, match="FREEDOM"):
        compat.model_source(mmrec_src, "NoSuchModel")


# ------------------------------------------------------------------------------------- scipy
def _norm_adj_reference(inter: sp.coo_matrix) -> np.ndarray:
    n_u, n_i = inter.shape
    a = np.zeros((n_u + n_i, n_u + n_i))
    a[inter.row, inter.col + n_u] = 1
    a[inter.col + n_u, inter.row] = 1
    d = (a > 0).sum(1) + 1e-7
    return a / np.sqrt(d)[:, None] / np.sqrt(d)[None, :]


def test_scipy_alias_needed_and_sufficient(mmrec_src):
    code = """
    import types, numpy as np, scipy.sparse as sp
    if hasattr(sp.dok_matrix, "_update"):
        print("NOT-NEEDED")
    from models.freedom import FREEDOM
    m = sp.coo_matrix((np.ones(3, dtype=np.float32), ([0, 1, 1], [0, 0, 1])), shape=(2, 2))
    fake = types.SimpleNamespace(interaction_matrix=m, n_users=2, n_items=2, n_nodes=4)
    FREEDOM.get_norm_adj_mat(fake)
    """
    assert_needed(code, mmrec_src, "_update")
    freedom = compat.model_class(mmrec_src, "FREEDOM")  # applies the alias
    inter = sp.coo_matrix((np.ones(3, dtype=np.float32), ([0, 1, 1], [0, 0, 1])), shape=(2, 2))
    fake = types.SimpleNamespace(interaction_matrix=inter, n_users=2, n_items=2, n_nodes=4)
    got = freedom.get_norm_adj_mat(fake).to_dense().numpy()
    np.testing.assert_allclose(got, _norm_adj_reference(inter), rtol=1e-6)


# ------------------------------------------------------------------------------------- torch_scatter
def test_scatter_standin_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(7, 3, generator=g)
    index = torch.tensor([0, 2, 2, 4, 0, 2, 1])
    for reduce in ("sum", "mean", "max", "min"):
        got = compat.scatter(src, index, dim=0, dim_size=6, reduce=reduce)
        want = torch.zeros(6, 3)
        for slot in range(6):
            rows = src[index == slot]
            if len(rows):
                want[slot] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.amax(0), "min": rows.amin(0)}[
                    reduce
                ]
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(
        compat.scatter_add(src[:, 0], index, dim=0), torch.zeros(5).index_add_(0, index, src[:, 0])
    )


def test_scatter_standin_needed_and_sufficient(mmrec_src):
    code = """
    import importlib.util, torch
    if importlib.util.find_spec("torch_scatter") is not None:
        print("NOT-NEEDED")
    from utils.utils import get_sparse_laplacian
    get_sparse_laplacian(torch.tensor([[0, 1], [1, 0]]), torch.ones(2), 2, 'sym')
    """
    assert_needed(code, mmrec_src, "torch_scatter")
    utils = compat.import_mmrec(mmrec_src, "utils.utils")
    edges = torch.tensor([[0, 0, 1, 2], [1, 2, 0, 0]])
    weights = torch.tensor([1.0, 2.0, 1.0, 2.0])
    _, w = utils.get_sparse_laplacian(edges, weights, 3, "sym")
    deg = torch.tensor([3.0, 1.0, 2.0])  # row sums of the weights
    torch.testing.assert_close(w, weights / deg[edges[0]].sqrt() / deg[edges[1]].sqrt())


# ------------------------------------------------------------------------------------- .cuda()
def test_cuda_calls_follow_the_configured_device():
    original = torch.Tensor.cuda
    with compat.device_redirect("cpu"):
        assert torch.ones(2).cuda().device.type == "cpu"
    assert torch.Tensor.cuda is original
    if not torch.cuda.is_available():  # needed: SMORE/LATTICE/MGCN call .cuda() unconditionally
        with pytest.raises((RuntimeError, AssertionError)):
            torch.ones(2).cuda()


def test_parameter_to_returns_a_copy_while_building():
    class DualGNNPattern(torch.nn.Module):  # the two lines of DualGNN/DRAGON that need it
        def __init__(self) -> None:
            super().__init__()
            self.result_embed = torch.nn.Parameter(torch.zeros(3)).to("cpu")
            self.result_embed = torch.ones(3)

    with pytest.raises(TypeError, match="result_embed"):
        DualGNNPattern()
    with compat.gpu_construction_semantics():
        module = DualGNNPattern()
    assert "result_embed" not in dict(module.named_parameters())
    p = torch.nn.Parameter(torch.zeros(2))
    assert p.to("cpu") is p  # restored


# ------------------------------------------------------------------------------------- numpy
def test_numpy_alias_needed_and_sufficient_for_mmrec_metrics(mmrec_src):
    code = """
    import numpy as np
    if hasattr(np, "float"):
        print("NOT-NEEDED")
    from utils.metrics import ndcg_
    ndcg_(np.array([[True, False]]), np.array([1]))
    """
    assert_needed(code, mmrec_src, "has no attribute 'float'")
    compat.apply_numpy_aliases()
    metrics = compat.import_mmrec(mmrec_src, "utils.metrics")
    # MMRec's evaluator and ours are independent implementations of the same definitions
    rng = np.random.default_rng(0)
    hits = rng.random((50, 20)) < 0.15
    n_rel = rng.integers(1, 6, 50)
    np.testing.assert_allclose(metrics.recall_(hits, n_rel)[-1], M.recall(hits, n_rel, 20).mean())
    np.testing.assert_allclose(metrics.ndcg_(hits, n_rel)[-1], M.ndcg(hits, n_rel, 20).mean())
    np.testing.assert_allclose(metrics.ndcg_(hits, n_rel)[9], M.ndcg(hits, n_rel, 10).mean())


# ------------------------------------------------------------------------------------- imports
def test_layergcn_import_alias(mmrec_src):
    cls = compat.model_class(mmrec_src, "LayerGCN")
    assert cls.__name__ == "LayerGCN"


def test_torch_geometric_models_refused_without_it(mmrec_src, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torch_geometric" else real(n, *a))
    for model in ("MMGCN", "GRCN", "DualGNN", "DRAGON", "MVGAE"):
        with pytest.raises(compat.MMRecUnavailableError, match=r"torch_geometric.*vlm4rec-bench\[mmrec\]"):
            compat.check_requirements(mmrec_src, model)
    compat.check_requirements(mmrec_src, "FREEDOM")  # not needed there


def test_missing_python_package_is_named(mmrec_src):
    if importlib.util.find_spec("sparsesvd") is not None:
        pytest.skip("sparsesvd is installed here")
    with pytest.raises(compat.MMRecUnavailableError, match="sparsesvd"):
        compat.model_class(mmrec_src, "PGL")


def test_other_top_level_utils_is_refused(mmrec_src, monkeypatch, tmp_path):
    if "utils" in sys.modules:
        monkeypatch.delitem(sys.modules, "utils")
    fake = types.ModuleType("utils")
    fake.__file__ = str(tmp_path / "utils.py")
    monkeypatch.setitem(sys.modules, "utils", fake)
    with pytest.raises(compat.MMRecUnavailableError, match="already imported"):
        compat.import_mmrec(mmrec_src, "utils.utils")


def test_checkout_through_a_symbolic_link_is_the_same_checkout(mmrec_src, tmp_path):
    """MMRec's packages imported from the real path, then asked for through a link to it: no refusal."""
    compat.import_mmrec(mmrec_src.resolve(), "common.abstract_recommender")
    link = tmp_path / "mmrec-src-link"
    link.symlink_to(mmrec_src.resolve(), target_is_directory=True)
    assert compat.import_mmrec(link, "common.abstract_recommender").__name__ == "common.abstract_recommender"
