"""Resuming a distributed run: every rank's file or a clear error naming what is missing or
mismatched (the collective decision is simulated by a channel that reports the other ranks)."""

from __future__ import annotations

import pytest

from convcheck.errors import InputError
from convcheck.torch.checkpoint import check_matches
from convcheck.torch.distributed.base import _resumable, checkpoint_path


class Ranks:
    """A channel of ``size`` ranks seen from ``rank``; the others miss the ranks in ``absent``."""

    def __init__(self, rank: int, size: int, absent: set[int]) -> None:
        self.rank, self.size, self.absent = rank, size, absent

    def all_reduce_sum(self, values):
        return [values[r] if r == self.rank else float(r in self.absent)
                for r in range(self.size)]


def files(folder, size, ranks):
    folder.mkdir(exist_ok=True)
    for rank in ranks:
        checkpoint_path(folder, rank, size).write_bytes(b"x")


def test_every_rank_has_its_file(tmp_path):
    files(tmp_path, 3, range(3))
    assert _resumable(Ranks(1, 3, set()), tmp_path, checkpoint_path(tmp_path, 1, 3))


def test_no_rank_has_a_file_the_algorithm_starts_fresh(tmp_path):
    assert not _resumable(Ranks(0, 3, {1, 2}), tmp_path, checkpoint_path(tmp_path, 0, 3))


def test_a_missing_rank_file_is_named(tmp_path):
    files(tmp_path, 3, [0, 1])
    with pytest.raises(InputError) as info:
        _resumable(Ranks(0, 3, {2}), tmp_path, checkpoint_path(tmp_path, 0, 3))
    assert info.value.field == "checkpoint" and "missing: rank-2-of-3.pt" in str(info.value)


def test_another_world_size_is_named(tmp_path):
    files(tmp_path, 4, range(4))
    with pytest.raises(InputError) as info:
        _resumable(Ranks(0, 3, {1, 2}), tmp_path, checkpoint_path(tmp_path, 0, 3))
    message = str(info.value)
    assert "a run on 3 processes" in message and "rank-0-of-4.pt" in message


def test_a_checkpoint_of_another_run_names_each_difference():
    saved = {"mode": "ps", "algorithm": {"name": "gd"}, "world_size": 3, "dim": 10}
    check_matches("f.pt", saved, dict(saved))
    with pytest.raises(InputError) as info:
        check_matches("f.pt", saved, {**saved, "world_size": 4, "dim": 12, "new": 1})
    message = str(info.value)
    assert "'f.pt'" in message and "world_size: 3 there, 4 here" in message
    assert "dim: 10 there, 12 here" in message and "mode" not in message
