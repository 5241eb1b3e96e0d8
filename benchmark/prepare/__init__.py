"""Datasets → splits: the one dataset config and the one loader every front-end uses.

- :mod:`benchmark.prepare.config` — :class:`DatasetConfig` (one set of defaults), ``SOURCES``,
  the ``data prepare`` flags generated from its fields;
- :mod:`benchmark.prepare.files` — raw release files: read → dedupe → filter → k-core → split;
- :mod:`benchmark.prepare.sources` — :func:`load_dataset`, used by ``run``, ``data prepare``
  and ``data import``.
"""

from benchmark.prepare.config import (
    IMPORT_SOURCES,
    SOURCES,
    DatasetConfig,
    SplitSettings,
    add_flags,
    dataset_from_mapping,
    dataset_key,
    flag_values,
)
from benchmark.prepare.files import prepare_files, prepare_official
from benchmark.prepare.sources import LoadedDataset, imported_features, load_dataset, source_dir

__all__ = [
    "IMPORT_SOURCES",
    "SOURCES",
    "DatasetConfig",
    "LoadedDataset",
    "SplitSettings",
    "add_flags",
    "dataset_from_mapping",
    "dataset_key",
    "flag_values",
    "imported_features",
    "load_dataset",
    "prepare_files",
    "prepare_official",
    "source_dir",
]
