"""The benchmark suite: ``python -m fgrad.bench`` (see ``--help``)."""
