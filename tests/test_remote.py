"""Archives at fsspec URLs (issue 9): HTTP with Range, S3 (moto), file:// and memory://.

Every server is started here on 127.0.0.1 and counts the body bytes it sends, so the
tests can show that importing one module of a large archive fetches only kilobytes.
Nothing leaves the machine.
"""

from __future__ import annotations

import http.server
import os
import re
import sys
import tempfile
import threading
import uuid

import pytest

from helpers import run_python
from hermetic import ArchiveError, PackageExporter, PackageImporter
from hermetic._remote import is_url
from hermetic.errors import MissingDependencyError

fsspec = pytest.importorskip("fsspec", reason="remote archives need hermetic[fsspec]")
np = pytest.importorskip("numpy", reason="the large storage is a NumPy array")

#: One storage record this large, so that 1% of the archive is about 670 KB.
BIG_BYTES = 64 << 20
SMALL_SOURCE = "VALUE = 42\n"


def _export(target, **options):
    """Write a package with module ``small`` and a 64 MiB array in ``data/big.pkl``."""
    big = np.arange(BIG_BYTES // 8, dtype=np.int64)
    with PackageExporter(target, **options) as exporter:
        exporter.save_source_string("small", SMALL_SOURCE)
        exporter.save_pickle("data", "big.pkl", {"big": big, "small": np.ones(3)})


def _export_that_fails(target, **options):
    """Start an export to *target*, then raise RuntimeError inside its ``with``."""
    with PackageExporter(target, **options) as exporter:
        exporter.save_source_string("small", SMALL_SOURCE)
        raise RuntimeError("boom")


def _check_small_module(importer):
    assert importer.import_module("small").VALUE == 42


def _check_arrays(importer):
    loaded = importer.load_pickle("data", "big.pkl")
    assert loaded["big"].shape == (BIG_BYTES // 8,)
    assert loaded["big"][-1] == BIG_BYTES // 8 - 1
    assert loaded["small"].tolist() == [1.0, 1.0, 1.0]


@pytest.fixture(scope="module")
def archive_bytes(tmp_path_factory):
    """The bytes of the sample package, built once for the module."""
    path = tmp_path_factory.mktemp("remote") / "model.pt"
    _export(path)
    return path.read_bytes()


# -- HTTP server with Range support ---------------------------------------------------

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` by path, honouring ``Range: bytes=a-b``."""

    def do_HEAD(self):
        self._respond(body=False)

    def do_GET(self):
        self._respond(body=True)

    def _respond(self, *, body):
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, end, status = 0, len(data), 200
        match = _RANGE.fullmatch(self.headers.get("Range", ""))
        if match:
            start = int(match[1])
            end = min(int(match[2]) + 1 if match[2] else len(data), len(data))
            status = 206
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if body:
            self.wfile.write(data[start:end])
            with self.server.lock:
                self.server.bytes_sent += end - start

    def log_message(self, format, *args):
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def http_server():
    """A threaded HTTP server on a free 127.0.0.1 port; ``.url`` is its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    server.files, server.bytes_sent, server.lock = {}, 0, threading.Lock()
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def served(http_server, archive_bytes):
    """The URL of the sample package on the HTTP server, with the count reset."""
    http_server.files["/model.pt"] = archive_bytes
    http_server.bytes_sent = 0
    return f"{http_server.url}/model.pt"


def test_http_import_of_one_module_fetches_under_one_percent(
    http_server, served, archive_bytes
):
    """Importing the small module of a 64 MiB archive over HTTP fetches < 1% of it."""
    importer = PackageImporter(served)
    _check_small_module(importer)
    importer.close()
    assert importer.filename == served
    assert 0 < http_server.bytes_sent < len(archive_bytes) / 100


def test_http_load_pickle_reads_the_arrays(http_server, served):
    """load_pickle over HTTP reads the storages into memory (no file to map)."""
    importer = PackageImporter(served)
    assert importer.zip_reader.path is None
    _check_arrays(importer)
    importer.close()
    assert http_server.bytes_sent < BIG_BYTES * 1.05


def test_http_missing_archive_is_an_archive_error_naming_the_url(http_server):
    """A URL with nothing behind it raises ArchiveError naming the URL."""
    url = f"{http_server.url}/missing.pt"
    with pytest.raises(ArchiveError, match=re.escape(url)) as info:
        PackageImporter(url)
    assert info.value.archive == url


# -- S3 served by moto -----------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 API on a free 127.0.0.1 port, counting the body bytes it sends."""
    pytest.importorskip(
        "s3fs", reason="s3:// needs s3fs (pip install 'hermetic[fsspec]')"
    )
    moto_server = pytest.importorskip(
        "moto.server", reason="the S3 tests need moto[server]"
    )
    from werkzeug.serving import make_server

    # moto's own ThreadedMotoServer serves this app; wrapping it counts the bytes.
    app = moto_server.DomainDispatcherApplication(moto_server.create_backend_app)
    counter = {"bytes": 0}

    def counting_app(environ, start_response):
        for chunk in app(environ, start_response):
            counter["bytes"] += len(chunk)
            yield chunk

    server = make_server("127.0.0.1", 0, counting_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.counter = counter
    server.options = {"endpoint_url": f"http://127.0.0.1:{server.server_port}"}
    yield server
    server.shutdown()
    thread.join()


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):
    """Dummy credentials, a fresh bucket, and the server's storage options."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3_server.options)
    bucket = f"bucket-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    s3_server.counter["bytes"] = 0
    s3_server.fs, s3_server.bucket = fs, bucket
    return s3_server


def test_s3_export_then_import_one_module_fetches_under_one_percent(s3):
    """An archive exported to S3 imports its small module fetching < 1% of it."""
    url = f"s3://{s3.bucket}/model.pt"
    _export(url, storage_options=s3.options)
    size = s3.fs.size(url)
    assert size > BIG_BYTES
    s3.counter["bytes"] = 0
    importer = PackageImporter(url, storage_options=s3.options)
    _check_small_module(importer)
    importer.close()
    assert 0 < s3.counter["bytes"] < size / 100
    with PackageImporter(url, storage_options=s3.options) as importer:
        _check_arrays(importer)


def test_s3_failed_export_leaves_nothing_at_the_url(s3, monkeypatch, tmp_path):
    """An export that raises uploads nothing and removes its temporary copy."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    url = f"s3://{s3.bucket}/broken.pt"
    with pytest.raises(RuntimeError, match="boom"):
        _export_that_fails(url, storage_options=s3.options)
    assert not s3.fs.exists(url)
    assert not [n for n in os.listdir(tmp_path) if n.startswith("hermetic-upload-")]


def test_s3_missing_archive_is_an_archive_error_naming_the_url(s3):
    """A missing key raises ArchiveError naming the s3:// URL."""
    url = f"s3://{s3.bucket}/missing.pt"
    with pytest.raises(ArchiveError, match=re.escape(url)):
        PackageImporter(url, storage_options=s3.options)


# -- file:// and memory:// -------------------------------------------------------------


def test_memory_url_round_trips():
    """A package exported to memory:// loads back from the same URL."""
    url = f"memory://hermetic-{uuid.uuid4().hex}/model.pt"
    _export(url)
    with PackageImporter(url) as importer:
        assert importer.filename == url
        assert importer.zip_reader.archive_name == "model"
        _check_small_module(importer)
        _check_arrays(importer)
    fsspec.filesystem("memory").rm(url)


def test_file_url_round_trips_and_still_maps_storages(tmp_path):
    """A file:// package is read as a local file, so its storages are mapped."""
    url = (tmp_path / "model.pt").as_uri()
    _export(url)
    with PackageImporter(url) as importer:
        assert importer.filename == url
        assert importer.zip_reader.path == str(tmp_path / "model.pt")
        _check_small_module(importer)
        _check_arrays(importer)


def test_failed_memory_export_leaves_nothing():
    """An export to memory:// that fails before close() writes nothing there."""
    url = f"memory://hermetic-{uuid.uuid4().hex}/broken.pt"
    with pytest.raises(RuntimeError, match="boom"):
        _export_that_fails(url)
    assert not fsspec.filesystem("memory").exists(url)


def test_failed_upload_is_an_archive_error_and_leaves_nothing(monkeypatch, tmp_path):
    """If the upload itself fails, close() raises ArchiveError naming the URL."""
    from fsspec.implementations.memory import MemoryFileSystem

    def refuse(self, lpath, rpath, **kwargs):
        raise PermissionError("uploads are refused")

    monkeypatch.setattr(MemoryFileSystem, "put_file", refuse)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    url = f"memory://hermetic-{uuid.uuid4().hex}/refused.pt"
    exporter = PackageExporter(url)
    exporter.save_source_string("small", SMALL_SOURCE)
    with pytest.raises(ArchiveError, match="uploads are refused") as info:
        exporter.close()
    assert info.value.archive == url
    assert not fsspec.filesystem("memory").exists(url)
    assert os.listdir(tmp_path) == []


def test_missing_memory_archive_is_an_archive_error_naming_the_url():
    """A memory:// URL with nothing behind it raises ArchiveError naming the URL."""
    url = "memory://hermetic-nothing-here/model.pt"
    with pytest.raises(ArchiveError, match=re.escape(url)):
        PackageImporter(url)


def test_without_fsspec_a_url_names_the_extra(monkeypatch):
    """Opening a URL without fsspec raises MissingDependencyError naming the extra."""
    monkeypatch.setitem(sys.modules, "fsspec.core", None)
    with pytest.raises(MissingDependencyError, match=r"hermetic\[fsspec\]"):
        PackageImporter("s3://bucket/model.pt")
    with pytest.raises(MissingDependencyError, match=r"hermetic\[fsspec\]"):
        PackageExporter("memory://model.pt")


def test_importing_hermetic_does_not_import_fsspec():
    """fsspec is imported only when a URL is opened."""
    out = run_python(
        """
        import sys
        from hermetic import PackageExporter, PackageImporter
        print("fsspec" in sys.modules)
        """
    )
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("s3://bucket/model.pt", True),
        ("https://example.invalid/m.pt", True),
        ("memory://m.pt", True),
        ("file:///tmp/m.pt", True),
        ("model.pt", False),
        ("/tmp/model.pt", False),
        ("C://models/model.pt", False),
        ("C:\\models\\model.pt", False),
        ("", False),
    ],
)
def test_is_url_tells_urls_from_paths(target, expected):
    """Schemes of two or more letters are URLs; paths and drive letters are not."""
    assert is_url(target) is expected
