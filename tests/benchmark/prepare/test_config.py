"""DatasetConfig: one set of defaults resolved in one place, flags generated from its fields,
the ``data prepare`` mapping, and errors that name the key."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmark.configuration import from_dict
from benchmark.errors import ConfigError
from benchmark.prepare import DatasetConfig, add_flags, dataset_from_mapping, dataset_key, flag_values
from benchmark.protocols import PAPER_SEED, PROTOCOLS, SPLIT_PROTOCOLS


def settings(**values) -> tuple[int, int, int]:
    s = from_dict(DatasetConfig, values).split_settings()
    return s.seed, s.user_kcore, s.item_kcore


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, (0, 5, 5)),  # default protocol mmrec
        ({"protocol": "paper"}, (PAPER_SEED, 5, 0)),
        ({"protocol": "loo"}, (0, 5, 5)),
        ({"protocol": "global-time"}, (0, 5, 5)),
        ({"protocol": "paper", "kcore": 3}, (PAPER_SEED, 3, 3)),
        ({"protocol": "paper", "kcore": 3, "item_kcore": 0, "split_seed": 1}, (1, 3, 0)),
        ({"kcore": 10, "user_kcore": 2}, (0, 2, 10)),
        ({"split_seed": 0, "protocol": "paper"}, (0, 5, 0)),
    ],
)
def test_unset_values_take_the_protocols_defaults(values, expected):
    assert settings(**values) == expected


def test_protocol_names_are_owned_by_benchmark_protocols():
    assert PROTOCOLS == (*SPLIT_PROTOCOLS, "official")
    field = next(f for f in dataclasses.fields(DatasetConfig) if f.name == "protocol")
    assert field.metadata["choices"] is PROTOCOLS and field.default == "mmrec"


def test_every_key_with_a_flag_becomes_a_data_prepare_flag(tmp_path):
    parser = argparse.ArgumentParser()
    add_flags(parser)
    args = parser.parse_args(
        ["--release", "2018", "--reviews", "r.json", "--user-kcore", "3", "--seed", "9", "--image-only"]
        + ["--param", "valid_frac=0.1", "--param", "test_frac=0.2", "--protocol", "global-time"]
    )
    values = flag_values(args)
    assert values["reviews"] == str(Path("r.json").resolve())  # flags are relative to the working directory
    assert {k: v for k, v in values.items() if k != "reviews"} == {
        "release": "2018",
        "user_kcore": 3,
        "split_seed": 9,
        "image_only": True,
        "protocol": "global-time",
        "protocol_params": {"valid_frac": 0.1, "test_frac": 0.2},
    }
    with pytest.raises(SystemExit):  # choices come from the field's allowed values
        parser.parse_args(["--dedupe", "sometimes"])
    config_only = {f.name for f in dataclasses.fields(DatasetConfig) if not f.metadata["flag"]}
    assert config_only == {"name", "source", "path", "demo"}


def test_a_new_key_is_a_one_place_change():
    @dataclass
    class Extended(DatasetConfig):
        min_rating: float | None = dataset_key(None, "drop interactions rated below this")

    parser = argparse.ArgumentParser()
    add_flags(parser, Extended)
    assert "--min-rating" in parser.format_help() and "drop interactions rated below" in parser.format_help()
    assert flag_values(parser.parse_args(["--min-rating", "3.5"]), Extended) == {"min_rating": 3.5}
    assert from_dict(Extended, {"min_rating": 4}).min_rating == 4.0


def test_data_prepare_mapping_keeps_the_old_spellings(tmp_path):
    ds = dataset_from_mapping({"source": "files", "release": 2023, "reviews": "r.jsonl", "seed": 4}, tmp_path)
    assert ds.release == "2023" and ds.split_seed == 4 and ds.reviews == str(tmp_path / "r.jsonl")
    with pytest.raises(ConfigError, match="either seed or split_seed"):
        dataset_from_mapping({"source": "files", "release": "2023", "reviews": "r", "seed": 1, "split_seed": 2})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"source": "files", "release": "2018"}, "dataset.reviews: required when source is 'files'"),
        ({"source": "official-2023", "path": "x"}, "dataset.category: required when source is 'official-2023'"),
        ({"source": "mmrec"}, "dataset.path: required when source is 'mmrec'"),
        ({"source": "mmrec", "path": "x", "kcore": 5}, "dataset.kcore: source 'mmrec' takes its split as given"),
        ({"source": "prepared", "path": "x", "split_seed": 1}, "dataset.split_seed: source 'prepared'"),
        ({"source": "mmrec", "path": "x", "variant": "last_out"}, "dataset.variant: only for protocol 'official'"),
        ({"source": "mmrec", "path": "x", "meta": "m"}, "dataset.release: required to read `meta`"),
        ({"source": "demo", "category": "Toys"}, "dataset.category: only for protocol 'official'"),
        ({"source": "files", "release": "2018", "reviews": "r", "protocol": "official"}, "dataset.release"),
        ({"variant": "first_out"}, "dataset.variant: 'first_out' is not allowed; allowed values: last_out"),
        ({"user_kcore": -2}, "dataset.user_kcore: must be an integer >= 0"),
        ({"protocol": "official"}, "dataset.protocol: 'official' reads the release's benchmark files"),
    ],
)
def test_errors_name_the_key(values, message):
    with pytest.raises(ConfigError) as err:
        from_dict(DatasetConfig, values, "dataset")
    assert message in str(err.value)


def test_mmrec_dataset_name_may_be_the_category():
    ds = from_dict(DatasetConfig, {"name": "baby", "source": "mmrec", "path": "x", "category": "Baby"})
    assert ds.category == "Baby" and not ds.draws_split
