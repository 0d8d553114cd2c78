"""The data loader and the downloader (against a local HTTP server on 127.0.0.1)."""

from __future__ import annotations

import io
import threading
import zipfile
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from namelang.data import N_LANGUAGES, download, load_names


def test_dataset_has_18_sorted_languages(names_by_language):
    assert list(names_by_language) == sorted(names_by_language)
    assert len(names_by_language) == N_LANGUAGES
    assert sum(len(v) for v in names_by_language.values()) == 20074
    assert "Zhou" in names_by_language["Chinese"]


def test_load_names_reads_argument_then_env(tmp_path, monkeypatch, tiny_dataset):
    assert list(load_names(tiny_dataset)) == ["Alpha", "Beta", "Gamma"]
    monkeypatch.setenv("NAMELANG_DATA", str(tiny_dataset))
    assert list(load_names()) == ["Alpha", "Beta", "Gamma"]
    with pytest.raises(FileNotFoundError, match="namelang download"):
        load_names(tmp_path / "empty")


def test_load_names_handles_crlf_and_blank_lines(tmp_path):
    (tmp_path / "X.txt").write_bytes("Ab\r\n\r\nÉcho\r\n".encode())
    assert load_names(tmp_path) == {"X": ["Ab", "Écho"]}


def make_archive(languages: int = N_LANGUAGES) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(languages):
            archive.writestr(f"data/names/Lang{i:02d}.txt", f"Name{i}\nOther{i}\n")
        archive.writestr("data/eng-fra.txt", "not a names file")
    return buffer.getvalue()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.zip").write_bytes(make_archive())
    (root / "short.zip").write_bytes(make_archive(3))
    (root / "broken.zip").write_bytes(b"this is not a zip")
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_extracts_the_names(server, tmp_path):
    dest = download(tmp_path / "cache" / "names", url=f"{server}/data.zip")
    names = load_names(dest)
    assert len(names) == N_LANGUAGES and names["Lang03"] == ["Name3", "Other3"]
    assert not any(p.name.startswith(".names-") for p in dest.parent.iterdir())


@pytest.mark.parametrize(
    ("file", "message"), [("broken.zip", "not a zip"), ("short.zip", "expected 18")]
)
def test_download_refuses_a_wrong_archive(server, tmp_path, file, message):
    dest = tmp_path / "names"
    with pytest.raises(ValueError, match=message):
        download(dest, url=f"{server}/{file}")
    assert not dest.exists()


def test_download_offline_is_a_clear_error(server, tmp_path):
    with pytest.raises(ConnectionError, match="could not download"):
        download(tmp_path / "names", url=f"{server}/missing.zip")
    with pytest.raises(ConnectionError, match="NAMELANG_DATA"):
        download(tmp_path / "names", url="http://127.0.0.1:9/data.zip")


def test_download_replaces_an_old_copy_whole(server, tmp_path):
    dest = tmp_path / "names"
    dest.mkdir()
    (dest / "Stale.txt").write_text("x")
    download(dest, url=f"{server}/data.zip")
    assert not (dest / "Stale.txt").exists()
    assert Path(dest / "Lang00.txt").exists()
