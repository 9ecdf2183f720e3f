"""``python -m fgrad.bench`` in its quick mode: every workload builds, every fgrad
contender agrees with the hand-written NumPy baseline (the builders check this before
timing), and ``--json`` writes one row per contender. Peers are left out so the test
does not depend on what else is installed; nothing here checks a speed.
"""

import json

import pytest

from fgrad.bench import __main__ as bench
from fgrad.bench import workloads


@pytest.fixture
def no_peers(monkeypatch):
    for peer in ("jax", "torch", "autograd"):
        monkeypatch.setattr(workloads, peer, None)


def test_quick_run_writes_every_workload(no_peers, tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--quick", "--no-cold", "--rounds", "1", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    workloads_seen = {row["workload"].split()[0] for row in rows}
    assert workloads_seen == {"W1", "W2", "W3", "W4", "W5"}
    contenders = {row["contender"] for row in rows}
    assert {"numpy", "fgrad jit(grad)", "fgrad jit(value_and_grad)",
            "fgrad jit(train step)", "fgrad jit(hessian)"} <= contenders
    assert all(row["median"] > 0 and row["ratio"] > 0 for row in rows)
    assert "new-shape latency" in capsys.readouterr().out


def test_latency_module_docstring_example():
    import doctest

    from fgrad.bench import latency

    failures, tried = doctest.testmod(latency)
    assert tried > 0 and failures == 0
