"""Describe and encode under Lightning DDP, 2 CPU processes (gloo): the same descriptions as one
process (batch size 1, so no item's generation depends on which items share its batch), and the
same embeddings up to float rounding (atol 1e-5: each rank's batches hold other texts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fixtures.tiny_models import make_image_split

from benchmark.split import Split
from vlm4rec.describers.hf import HFDescriber
from vlm4rec.describers.precomputed import read_description_table
from vlm4rec.encoders import SentenceTransformerEncoder, encode_items
from vlm4rec.inference import run_describe

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")


def test_describe_and_encode_on_two_processes_match_one(tmp_path, tiny_llava_dir, minilm_path, one_torch_thread):
    split = Split.load(make_image_split(tmp_path, n_items=7, n_users=2, missing=(3,)))
    describer = HFDescriber(str(tiny_llava_dir), max_new_tokens=4)
    outcomes = {}
    for procs, extra in ((1, {}), (2, {"devices": 2, "strategy": "ddp_fork", "accelerator": "cpu"})):
        outcomes[procs] = run_describe(
            split.items,
            describer,
            tmp_path / f"cache{procs}",
            tmp_path / f"out{procs}",
            image_root=tmp_path / "split",
            batch_size=1,
            progress=False,
            **extra,
        )
    one, two = outcomes[1], outcomes[2]
    assert one is not None and two is not None and two.n_run == one.n_run == 6
    rows = [[json.loads(x) for x in o.descriptions_path.read_text().splitlines()] for o in (one, two)]
    assert rows[0] == rows[1] and sum(r["status"] == "ok" for r in rows[0]) == 6
    # each rank wrote its own cache shard
    shards = sorted(p.name for p in (tmp_path / "cache2").rglob("shard-*"))
    assert len({s.split(".")[0] for s in shards}) == 2, shards

    table = read_description_table(one.descriptions_path)
    encoder = SentenceTransformerEncoder(str(minilm_path))
    common = {"text": "title+description", "batch_size": 2, "progress": False}
    single = encode_items(split.items, table, encoder, cache_dir=tmp_path / "emb1", **common)
    sharded = encode_items(
        split.items,
        table,
        encoder,
        cache_dir=tmp_path / "emb2",
        devices=2,
        strategy="ddp_fork",
        accelerator="cpu",
        **common,
    )
    assert torch.equal(single.mask, sharded.mask) and bool(single.mask.all())
    assert np.allclose(single.values.numpy(), sharded.values.numpy(), atol=1e-5, rtol=0)
    assert single.provenance["cache_key"] == sharded.provenance["cache_key"]
    assert not list((tmp_path / "emb2").glob(".ranks-*")), "the ranks' work folder is removed"
