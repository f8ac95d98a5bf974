"""``convcheck regions``: a tiny map end to end, and bad input (a grid with no points, an
unreachable scheduler) exits 2 naming the field."""

from __future__ import annotations

import json

from convcheck.cli import main


def test_regions_writes_the_map_and_prints_the_boundaries(tmp_path, capsys):
    argv = ["regions", "--algorithms", "gd", "--steps", "0.5,2.5", "--iterations", "100",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "largest certified α·L" in text and "largest converging" in text
    data = json.loads((tmp_path / "regions.json").read_text())
    assert data["maps"][0]["boundaries"][0]["largest_certified"] == 0.5
    assert (tmp_path / "regions-gd.png").exists()


def test_regions_bad_input_exits_2(tmp_path, capsys):
    assert main(["regions", "--steps", "", "--out", str(tmp_path)]) == 2
    assert "'steps'" in capsys.readouterr().err
    assert main(["regions", "--values", "2", "--algorithms", "ef21",
                 "--out", str(tmp_path)]) == 2
    assert "'values'" in capsys.readouterr().err
    assert main(["regions", "--algorithms", "gd", "--steps", "0.5", "--scheduler",
                 "tcp://127.0.0.1:1", "--timeout", "1", "--out", str(tmp_path)]) == 2
    assert "'scheduler'" in capsys.readouterr().err
    assert not (tmp_path / "regions.json").exists()
