"""``convcheck bench``."""

from __future__ import annotations

import json

from convcheck.cli import main


def test_bench_quick(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    assert "speed-up" in capsys.readouterr().out
    assert json.loads(out.read_text())["rows"]
    assert main(["bench", "--quick", "--repeats", "0"]) == 2
    assert "'repeats'" in capsys.readouterr().err

