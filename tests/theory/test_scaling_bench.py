"""The certificate-scaling benchmark table: rows for each M, the reduction at work (the LMI
does not grow with M for equal constants) and the same rate for equal workers at any M."""

from __future__ import annotations

import pytest

from convcheck.theory import scaling_bench


@pytest.mark.slow
def test_table_rows_and_the_reduction():
    rows = scaling_bench.certificate_timings(workers=(1, 10, 100), algorithms=("gd-sec",),
                                             classes=3)
    equal = [r for r in rows if r["constants"] == "equal"]
    spread = [r for r in rows if r["constants"] == "spread"]
    assert [r["workers"] for r in equal] == [1, 10, 100]
    assert [r["classes"] for r in spread] == [3, 3]
    assert len({r["lmi_rows"] for r in equal}) == 1  # M does not enlarge the SDP
    rhos = [r["rho"] for r in equal]
    assert max(rhos) - min(rhos) <= 2e-6
    assert all(r["gap"] is not None and 0 <= r["gap"] <= 1e-3 for r in rows)
    table = scaling_bench.format_table(rows)
    assert table.splitlines()[0] == scaling_bench.HEADER and len(table.splitlines()) == 6
