"""The SPEC §11 performance benchmark: ``python -m benchmarks [--quick] [--only P1,P3] [--json PATH]``.

Every figure runs against real ``statusd run`` daemons (started here, each with its own store and
socket) and beside a baseline measured in the same run against this machine's PostgreSQL, in
throwaway schemas that are dropped at the end. See ``benchmarks/figures/`` for what each figure
measures and ``benchmarks/datasets.py`` for the data it measures on.
"""
