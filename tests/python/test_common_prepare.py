"""benchmarks/_common/mlab_prepare.py: resumable downloads (against a
loopback server), the offline message, archive reading and the CLI."""

import hashlib
import http.server
import threading
import zipfile

import pytest

import mlab_prepare as mp
from conftest import make_dir, make_tar, make_zip

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    honour_range = True
    requests = []

    def do_GET(self):
        Handler.requests.append(self.headers.get("Range"))
        start = 0
        rng = self.headers.get("Range")
        if rng and Handler.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.requests = []
    Handler.honour_range = True
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"
    httpd.shutdown()


def test_download_resumes_a_partial_file(server, tmp_path):
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:300_000])
    mp.download(server, dest, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert Handler.requests == ["bytes=300000-"]
    assert not (tmp_path / "file.bin.part").exists()


def test_download_starts_over_when_the_server_ignores_range(server, tmp_path):
    Handler.honour_range = False
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(b"garbage that must not stay")
    mp.download(server, dest)
    assert dest.read_bytes() == PAYLOAD


def test_download_with_wrong_checksum_leaves_nothing_that_looks_done(server, tmp_path):
    dest = tmp_path / "file.bin"
    with pytest.raises(mp.PrepareError, match="md5"):
        mp.download(server, dest, md5="0" * 32)
    assert not dest.exists() and not (tmp_path / "file.bin.part").exists()


def test_download_prints_progress(server, tmp_path, capsys):
    mp.download(server, tmp_path / "file.bin")
    assert "MB" in capsys.readouterr().out


def test_fetch_offline_names_the_url_and_the_layout(tmp_path):
    paths = mp.TaskPaths(str(tmp_path / "task/script/prepare.py"))
    args = mp.parse_args("x", [])
    with pytest.raises(mp.PrepareError) as err:
        mp.fetch("https://example.org/a.tar.gz", ["a.tar.gz", "a"], args, paths, "the A archive")
    text = str(err.value)
    assert "https://example.org/a.tar.gz" in text and "DIR/a.tar.gz" in text and "--data-dir" in text


def test_data_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLAB_DATA_CACHE", str(tmp_path))
    monkeypatch.setenv("MLAB_ACCEPT_RULES", "1")
    args = mp.parse_args("x", [])
    assert args.data_dir == tmp_path and args.accept_rules
    with pytest.raises(mp.PrepareError, match="not a folder"):
        mp.parse_args("x", ["--data-dir", str(tmp_path / "missing")])


def test_kaggle_without_consent_refuses_before_downloading(tmp_path):
    paths = mp.TaskPaths(str(tmp_path / "task/script/prepare.py"))
    with pytest.raises(mp.PrepareError, match="--accept-rules"):
        mp.kaggle_fetch("some-comp", mp.parse_args("x", []), paths)


@pytest.mark.parametrize("kind", ["zip", "tar", "dir"])
def test_source_reads_zip_tar_and_folder_alike(tmp_path, kind):
    files = {"top/a/train.csv": "x\n1\n", "top/b.txt": "hi", "__MACOSX/top/._b.txt": "junk"}
    path = {"zip": lambda: make_zip(tmp_path / "d.zip", files),
            "tar": lambda: make_tar(tmp_path / "d.tar.gz", files),
            "dir": lambda: make_dir(tmp_path / "d", files)}[kind]()
    src = mp.Source(path)
    assert sorted(src.names()) == ["top/a/train.csv", "top/b.txt"]
    assert src.find("train.csv") == "top/a/train.csv"
    assert src.prefix_of("a/train.csv") == "top/"
    assert src.read_csv("train.csv").x.tolist() == [1]
    src.extract(src.find("b.txt"), tmp_path / "out/b.txt")
    assert (tmp_path / "out/b.txt").read_text() == "hi"
    with pytest.raises(mp.PrepareError, match="no file"):
        src.find("nope.csv")
    assert dict((n, f.read()) for n, f in src.iter_members())["top/b.txt"] == b"hi"


def test_source_refuses_a_file_that_is_no_archive(tmp_path):
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(mp.PrepareError, match="neither"):
        mp.Source(tmp_path / "x.zip")
    assert zipfile.is_zipfile(make_zip(tmp_path / "y.zip", {"a": "b"}))
