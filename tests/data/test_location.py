"""Where data files are found: --data-dir, then CONVCHECK_DATA, then the user cache."""

from __future__ import annotations

import warnings

import pytest

from convcheck.data import (
    cache_dir,
    download_dir,
    find_data_dir,
    find_data_files,
    load_libsvm,
    search_path,
)
from convcheck.errors import DataFileError


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Three data folders: an argument, the environment's, and the user cache."""
    folders = {name: tmp_path / name for name in ("argument", "environment", "cache")}
    for folder in folders.values():
        (folder / "libsvm").mkdir(parents=True)
    monkeypatch.setenv("CONVCHECK_DATA", str(folders["environment"]))
    monkeypatch.delenv("CONVCHECK_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("sys.platform", "linux")
    (tmp_path / "xdg").mkdir()
    (tmp_path / "xdg" / "convcheck").symlink_to(folders["cache"])
    return folders


def test_cache_folder_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "convcheck"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the spec: absolute paths only
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "convcheck"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "convcheck"


def test_search_order(places):
    order = [folder for folder, _ in search_path(places["argument"])]
    cache = places["cache"].parent / "xdg" / "convcheck"
    assert order == [places["argument"], places["environment"], cache]
    for name in ("cache", "environment", "argument"):  # the earlier folder wins
        (places[name] / "libsvm" / "a9a.gz").write_bytes(b"")
        found = find_data_files(["libsvm/a9a.gz"], places["argument"], "a9a")
        assert found == places[name].resolve()
    # a file only in the cache is found from there, with or without the other folders
    (places["cache"] / "libsvm" / "w8a.gz").write_bytes(b"")
    assert find_data_files(["libsvm/w8a.gz"], places["argument"]) == places["cache"].resolve()
    assert find_data_dir() == places["environment"].resolve()
    assert download_dir() == places["environment"].resolve()
    assert download_dir(places["argument"]) == places["argument"].resolve()


def test_missing_files_list_every_folder_and_the_download_command(places):
    with pytest.raises(DataFileError) as info:
        find_data_files(["libsvm/a9a.gz"], places["argument"], "a9a")
    message = str(info.value)
    for folder in ("argument", "environment", "xdg"):
        assert str(places["cache"].parent / folder) in message
    assert "convcheck data download a9a" in message and "CONVCHECK_DATA" in message


def test_an_explicit_folder_that_does_not_exist_is_an_error(places, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataFileError, match="data_dir argument") as info:
        load_libsvm("a9a", data_dir=missing)
    assert str(missing) in str(info.value)
    monkeypatch.setenv("CONVCHECK_DATA", str(missing))
    with pytest.raises(DataFileError, match="CONVCHECK_DATA") as info:
        find_data_dir()
    assert str(missing) in str(info.value)


def test_the_former_variable_still_works_with_a_warning(places, monkeypatch):
    monkeypatch.delenv("CONVCHECK_DATA")
    monkeypatch.setenv("CONVCHECK_DATA_DIR", str(places["argument"]))
    with pytest.warns(FutureWarning, match="CONVCHECK_DATA instead"):
        assert find_data_dir() == places["argument"].resolve()
    monkeypatch.setenv("CONVCHECK_DATA", str(places["environment"]))  # the new name wins
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert find_data_dir() == places["environment"].resolve()


def test_nothing_defaults_outside_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVCHECK_DATA", raising=False)
    monkeypatch.delenv("CONVCHECK_DATA_DIR", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert [folder for folder, _ in search_path()] == [tmp_path / "cache" / "convcheck"]
    with pytest.raises(DataFileError, match="no data folder found"):
        find_data_dir()
