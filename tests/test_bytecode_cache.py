"""Compiled packaged modules are cached by source digest, safely."""

from __future__ import annotations

import json
import os
import traceback

import pytest

from hermetic import PackageExporter, PackageImporter

SOURCE = "def fail():\n    raise ValueError('cached code still names its file')\n"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("HERMETIC_BYTECODE_CACHE", str(folder))
    return folder


@pytest.fixture
def package(archive):
    with PackageExporter(archive) as exporter:
        exporter.save_source_string("cachedmod", SOURCE)
    return archive


def _entries(folder):
    return sorted(p for p in folder.rglob("*.bin"))


def test_second_load_reuses_the_cached_compile(package, cache_dir, monkeypatch):
    """The first load writes an entry; the next one loads it instead of compiling."""
    PackageImporter(package).import_module("cachedmod")
    entries = _entries(cache_dir)
    assert len(entries) == 1
    import hermetic._bytecode_cache as cache

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled although a cache entry exists")

    monkeypatch.setattr(cache, "compile", no_compile, raising=False)
    module = PackageImporter(package).import_module("cachedmod")
    with pytest.raises(ValueError, match="cached code") as info:
        module.fail()
    text = "".join(traceback.format_exception(info.value))
    assert f'{module.__file__}", line 2, in fail' in text
    assert "raise ValueError('cached code still names its file')" in text


def test_altered_entry_is_ignored_and_rewritten(package, cache_dir):
    """An entry whose payload changed is not trusted: the source is compiled again."""
    PackageImporter(package).import_module("cachedmod")
    (entry,) = _entries(cache_dir)
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF
    entry.write_bytes(bytes(data))
    module = PackageImporter(package).import_module("cachedmod")
    with pytest.raises(ValueError, match="cached code"):
        module.fail()
    assert entry.read_bytes() != bytes(data)


def test_cache_can_be_turned_off(package, tmp_path, monkeypatch):
    """HERMETIC_BYTECODE_CACHE=0 writes nothing anywhere."""
    monkeypatch.setenv("HERMETIC_BYTECODE_CACHE", "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    PackageImporter(package).import_module("cachedmod")
    assert not (tmp_path / "xdg").exists()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_folder_others_can_write_is_not_used(package, tmp_path, monkeypatch):
    """A world-writable cache folder could hold planted code: it is not used."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    monkeypatch.setenv("HERMETIC_BYTECODE_CACHE", str(folder))
    module = PackageImporter(package).import_module("cachedmod")
    assert callable(module.fail)
    assert _entries(folder) == []


NESTED = (
    "class Shape:\n"
    "    def area(self):\n"
    "        def inner():\n"
    "            raise ValueError('nested')\n"
    "        return inner()\n"
)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_cached_code_names_the_packaged_file_at_every_depth(
    archive, cache_dir, newline
):
    """Methods and inner functions of a cached module report its file and lines."""
    with PackageExporter(archive) as exporter:
        exporter.save_source_string("shapes", NESTED.replace("\n", newline))
    for _ in range(2):  # a compile, then a cache hit
        module = PackageImporter(archive).import_module("shapes")
        with pytest.raises(ValueError, match="nested") as info:
            module.Shape().area()
        frames = traceback.extract_tb(info.value.__traceback__)[1:]
        assert [(f.filename, f.lineno, f.name) for f in frames] == [
            (module.__file__, 5, "area"),
            (module.__file__, 4, "inner"),
        ]
    assert len(_entries(cache_dir)) == 1


def test_entry_is_keyed_by_the_manifest_digest(package, cache_dir):
    """A record already checked against the manifest is not hashed again for the key."""
    importer = PackageImporter(package)
    importer.import_module("cachedmod")
    manifest = json.loads(importer.zip_reader.read(".data/hermetic/manifest.json"))
    (entry,) = _entries(cache_dir)
    assert entry.stem == manifest["records"]["cachedmod.py"]["sha256"]
