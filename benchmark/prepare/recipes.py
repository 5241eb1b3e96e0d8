"""Named recipes: a set of dataset-config values that reproduce another project's data exactly.

A recipe fills the keys a config leaves unset and refuses a key set to a different value (a
key still at its default counts as unset: setting ``dedupe: earliest`` explicitly beside a
recipe that needs ``all`` cannot be told apart from not setting it, so the recipe wins).
Recipes are applied once, when the config is validated, so the resolved config (what a run
records, what the data cache is keyed on) shows every value the recipe set.

``align-macridvae`` — the Amazon 2018 data of Align-MacridVAE (``igui/Align-MacridVAE-data``
@ 413dba33c903ec7dd139174389231b652fb1187a), the data the VLM4Rec paper used. What happens
before the split, stage by stage, and the choice that matches it:

1. **Reviews**: the *full* 2018 review file ``{Category}.json.gz`` (``amazon_dataset.py``
   ``get_categoryfile``: ``categoryFiles/``, not the 5-core and not the ratings CSV) →
   ``release: "2018"``, ``reviews`` = that file.
2. **Date window**: ``1a_download_amazon_data.ipynb`` cell 5 (``DATASETS``: per category a
   ``(min_date, max_date)``) and ``process_review_chunk`` (``min_date <=
   date.fromtimestamp(unixReviewTime) < max_date``) → ``date_from`` / ``date_before`` from
   :data:`WINDOWS` by the category in the reviews file name; dates in UTC (the notebook used the
   machine's local date; the split's summary counts the reviews a time-zone shift would move,
   see :mod:`benchmark.data.window`).
3. **Every review is a row**: ``process_review_chunk`` inserts each line as its own ``Review``
   (primary key = line number), so repeated (user, item) reviews stay separate rows →
   ``dedupe: all``.
4. **One k-core pass, items first**: ``load_amazon_dataset(kcore_iterations=1)`` calls
   ``find_k_core`` once: ``delete_products_with_few_reviews`` (< 5, ``COUNT(*)`` of review rows)
   then ``delete_reviewers_with_few_reviews`` (< 5); notebook cell 9 passes
   ``min_reviews_per_reviewer=5, min_reviews_per_asin=5`` → ``user_kcore: 5``, ``item_kcore: 5``,
   ``kcore_passes: 1``, ``kcore_order: items-first``.
5. **Items without metadata or image are kept**: ``load_metadata_into_db`` only *adds* products
   for asins that have reviews; nothing removes reviews of items without a metadata line, and
   ``generate_data.ipynb`` reads every review (``reviews_df``), gives an item without features a
   zero row (``copy_features``: "Item not found in features file") and skips an item without an
   image only when copying images (``save_images``) → no meta filter, ``image_only: false``.
6. **Split**: ``generate_data.ipynb`` cells 3, 9–13: ids by ``generate_unique_ids``
   (``default_rng(20230219).permutation`` of users, then of items), then
   ``split_train_test_proportion`` twice (0.4 held out, half of it test) with one random number
   per review row → ``protocol: paper``, ``split_seed: 20230219``, ``protocol_params:
   {repeats: per-row, ids: permuted}``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.prepare.config import DatasetConfig

#: the notebook's ``DATASETS``: category → (min_date, max_date), kept as ``date_from <= date < date_before``
WINDOWS: dict[str, tuple[str, str]] = {
    "Baby": ("2018-01-01", "2018-10-01"),
    "Clothing_Shoes_and_Jewelry": ("2018-03-01", "2018-10-01"),
    "Home_and_Kitchen": ("2018-03-01", "2018-10-01"),
    "Movies_and_TV": ("2017-01-01", "2018-10-01"),
    "Musical_Instruments": ("2017-01-01", "2018-10-01"),
    "Office_Products": ("2018-01-01", "2018-10-01"),
    "Sports_and_Outdoors": ("2018-01-01", "2018-10-01"),
    "Toys_and_Games": ("2018-01-01", "2018-10-01"),
}

#: recipe name → the values it sets (the date window comes from :data:`WINDOWS`)
RECIPE_VALUES: dict[str, dict[str, Any]] = {
    "align-macridvae": {
        "release": "2018",
        "protocol": "paper",
        "split_seed": 20230219,
        "user_kcore": 5,
        "item_kcore": 5,
        "kcore_passes": 1,
        "kcore_order": "items-first",
        "dedupe": "all",
        "image_only": False,
        "protocol_params": {"repeats": "per-row", "ids": "permuted"},
    }
}
#: the recipes a dataset config may name
RECIPES: tuple[str, ...] = tuple(RECIPE_VALUES)

_FULL_REVIEWS = re.compile(r"^(?P<category>.+)\.json(?:\.gz)?$")
_NOT_FULL = re.compile(r"(_5\.json(\.gz)?|\.csv(\.gz)?)$")


def category_of(reviews: str | None) -> str | None:
    """The category a full 2018 review file is named after (``Clothing_Shoes_and_Jewelry.json.gz``);
    ``None`` for another name."""
    name = Path(reviews).name if reviews else ""
    m = _FULL_REVIEWS.match(name)
    return m["category"] if m and not _NOT_FULL.search(name) else None


def apply_recipe(ds: DatasetConfig, path: str = "") -> None:
    """Set the values of ``ds.recipe`` on ``ds`` in place (see module docstring); idempotent.

    Raises :class:`ConfigError` naming the key when ``ds`` sets a value the recipe does not allow.
    """
    if ds.recipe is None:
        return
    p = f"{path}." if path else ""
    if ds.source != "files":
        raise ConfigError(
            f"{p}recipe: {ds.recipe!r} prepares raw review files; it needs source 'files', got {ds.source!r}"
        )
    values = dict(RECIPE_VALUES[ds.recipe])
    values.update(_window_values(ds, p))
    defaults = {f.name: _default(f) for f in dataclasses.fields(ds)}
    if ds.kcore not in (None, values["user_kcore"]):
        raise _conflict(p, ds.recipe, "kcore", ds.kcore, None)
    for key, want in values.items():
        have = getattr(ds, key)
        if key == "protocol_params":
            clash = {k: v for k, v in have.items() if k in want and v != want[k]}
            if clash:
                k = next(iter(clash))
                raise _conflict(p, ds.recipe, f"protocol_params.{k}", clash[k], want[k])
            setattr(ds, key, {**have, **want})
        elif have == want or have == defaults[key]:
            setattr(ds, key, want)
        else:
            raise _conflict(p, ds.recipe, key, have, want)


def _window_values(ds: DatasetConfig, p: str) -> dict[str, Any]:
    """The recipe's date window for the category of ``ds.reviews`` (the notebook's table)."""
    if ds.reviews and _NOT_FULL.search(Path(ds.reviews).name):
        raise ConfigError(
            f"{p}reviews: recipe {ds.recipe!r} reads the full review file {{Category}}.json.gz "
            f"(categoryFiles), not the 5-core or the ratings CSV; got {Path(ds.reviews).name!r}"
        )
    category = category_of(ds.reviews)
    if category in WINDOWS:
        lo, hi = WINDOWS[category]
        return {"date_from": lo, "date_before": hi}
    if ds.date_from or ds.date_before:
        return {}  # a category the notebook did not prepare: the config's own window stands
    raise ConfigError(
        f"{p}reviews: recipe {ds.recipe!r} takes its date window from the category of the review file "
        f"({', '.join(sorted(WINDOWS))}); {ds.reviews!r} is none of them — give date_from and date_before"
    )


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None  # pragma: no cover - every DatasetConfig field has a default


def _conflict(p: str, recipe: str, key: str, have: Any, want: Any) -> ConfigError:
    wanted = "unset" if want is None else repr(want)
    return ConfigError(f"{p}{key}: recipe {recipe!r} sets it to {wanted}; got {have!r} — remove the key or the recipe")
