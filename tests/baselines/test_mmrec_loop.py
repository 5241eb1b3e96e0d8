"""The kept pieces of MMRec's trainer: its optimizers and schedule, and the best epoch's whole state."""

from __future__ import annotations

import pytest
import torch

from baselines.mmrec_loop import BestState, build_optimizer
from benchmark.errors import ConfigError


class Graphy(torch.nn.Module):
    """A parameter, a graph built once, and a graph plus a flag that training replaces (LATTICE-like)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))
        self.fixed_adj = torch.eye(3)
        self.learned_adj = torch.zeros(3, 3)
        self.build_item_graph = True


def test_best_state_restores_parameters_and_replaced_graphs():
    m = Graphy()
    best = BestState(m)
    with torch.no_grad():
        m.w.fill_(1.0)
    m.learned_adj, m.build_item_graph = torch.full((3, 3), 1.0), False
    assert best.offer(0.5, 1, m)
    with torch.no_grad():
        m.w.fill_(2.0)
    m.learned_adj, m.build_item_graph = torch.full((3, 3), 2.0), True
    assert not best.offer(0.5, 2, m) and not best.offer(0.4, 3, m)  # ties keep the first
    fixed = m.fixed_adj
    best.restore(m)
    assert (best.value, best.epoch) == (0.5, 1)
    assert torch.equal(m.w.detach(), torch.ones(3)) and torch.equal(m.learned_adj, torch.ones(3, 3))
    assert m.build_item_graph is False and m.fixed_adj is fixed  # built-once graphs are not copied


class Cfg(dict):
    def __getitem__(self, key):
        return self.get(key)


def test_optimizers_and_schedule_are_mmrecs():
    m = Graphy()
    opt, sched = build_optimizer(m, Cfg(learner="SGD", learning_rate=0.1, weight_decay=0.0))
    assert isinstance(opt, torch.optim.SGD)
    opt, sched = build_optimizer(
        m, Cfg(learner="adam", learning_rate=0.1, weight_decay=0.0, learning_rate_scheduler=[0.96, 50])
    )
    for _ in range(50):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.96)
    with pytest.raises(ConfigError, match="config.learner: 'lbfgs'"):
        build_optimizer(m, Cfg(learner="lbfgs", learning_rate=0.1, weight_decay=0.0))
