"""``convcheck compare``."""

from __future__ import annotations

import json

from convcheck.cli import main


def test_compare_prints_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "compare.json"
    argv = ["compare", "gd", "gd-sec:xi=0.2", "--problem", "logistic", "--workers", "4",
            "--split", "sorted", "--iters", "2000", "--target", "1e-4", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "gd-sec:xi=0.2" in printed and "bits up" in printed
    document = json.loads(out.read_text())
    assert [row["spec"] for row in document["rows"]] == ["gd", "gd-sec:xi=0.2"]
    assert main(argv[:2] + ["nosuch:k=1"] + argv[3:]) == 2
    assert "'algorithm'" in capsys.readouterr().err

