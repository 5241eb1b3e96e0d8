"""The runner's stages, in the order :func:`benchmark.runner.pipeline.run_experiment` runs them.

Each takes its own config section, not the whole experiment config:

- :mod:`~benchmark.runner.stages.dataset` — ``DatasetConfig`` + cache dir → the split (cached);
- :mod:`~benchmark.runner.stages.features` — ``list[FeatureConfig]`` + split → item features (cached);
- :mod:`~benchmark.runner.stages.units` — models × seeds, ``EvaluationConfig``, the experiment's
  ``train`` layer, a tracker factory → one results file set per unit (resumable);
- :mod:`~benchmark.runner.stages.summary` — ``RunResults`` + ``StatisticsConfig`` + metric
  order → seed-averaged metrics, paired tests, tables, plots.
"""
