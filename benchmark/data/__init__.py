"""Raw Amazon files (2014, 2018, 2023 releases) → raw interaction table + item catalogue.

See :mod:`benchmark.split` for the schemas every reader produces.
"""
