"""``convcheck list``."""

from __future__ import annotations

import json

from convcheck.cli import main


def test_list_json(capsys):
    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "top-k" in listing["compressors"] and "logistic" in listing["objectives"]


def test_list_names_sync_and_async_algorithms(capsys):
    assert main(["list", "--json"]) == 0
    algorithms = json.loads(capsys.readouterr().out)["algorithms"]
    assert algorithms["dgs"]["engine"] == "async" and algorithms["gd"]["engine"] == "sync"



def test_list_is_plain_text(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "``" not in text and "^{" not in text
    assert ("gd-sec            sync   GD-SEC: workers send the entries of their gradient "
            "difference") in text
    assert "async-sparse-sgd/nonconvex" in text and "converges" in text
