"""fetch_dataset against a loopback HTTP server: resume, mirrors, corruption, tar safety, SIGKILL.

Nothing here touches the internet. The server serves small files in the official formats (IDX gz,
a CIFAR-style tar.gz of pickled batches) that the tests write, with md5s the tests compute, through
a `sources=` table that points at 127.0.0.1. It honours `Range: bytes=N-` with 206 unless told not
to, and can cut a response short, corrupt it, or stall mid-body until released.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from landscape.data.fetch import USER_AGENT, fetch_dataset
from landscape.data.sources import NOT_FETCHABLE, SOURCES, RemoteFile, Source
from landscape.errors import DataError, UserError

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 5.0  # per socket operation inside fetch_dataset


# --------------------------------------------------------------------------------------------------
# loopback server


class _State:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.user_agents: list[str | None] = []
        self.bytes_sent = 0
        self.honour_range = True
        self.corrupt = False
        self.cut_after: int | None = None  # close the connection after this many body bytes...
        self.cuts_left = 0  # ...for this many responses
        self.stall_after: int | None = None  # stop after this many body bytes until `release`
        self.release = threading.Event()
        self.chunk_delay = 0.0  # seconds between 16 KiB chunks
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one response per connection: a short body is a cut

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        st: _State = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        with st.lock:
            st.requests.append((self.path, rng))
            st.user_agents.append(self.headers.get("User-Agent"))
        data = st.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        if st.corrupt:
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and st.honour_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()

        limit = len(body)
        with st.lock:
            if st.cuts_left > 0 and st.cut_after is not None:
                st.cuts_left -= 1
                limit = min(limit, st.cut_after)
        sent = 0
        try:
            while sent < limit:
                if st.stall_after is not None and sent >= st.stall_after:
                    st.release.wait(10)  # bounded: the fixture releases at teardown anyway
                    st.stall_after = None
                piece = body[sent:min(limit, sent + 16384)]
                if st.stall_after is not None and sent < st.stall_after:
                    piece = piece[:st.stall_after - sent]
                self.wfile.write(piece)
                self.wfile.flush()
                sent += len(piece)
                with st.lock:
                    st.bytes_sent += len(piece)
                if st.chunk_delay:
                    time.sleep(st.chunk_delay)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (killed): fine


class Server:
    def __init__(self) -> None:
        self.state = _State()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.state = self.state  # type: ignore[attr-defined]
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def add(self, path: str, data: bytes) -> str:
        self.state.files[path] = data
        return self.base + path

    def ranges(self) -> list[str | None]:
        return [r for _, r in self.state.requests]

    def stop(self) -> None:
        self.state.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    s = Server()
    try:
        yield s
    finally:
        s.stop()


def _dead_url(path: str = "/x") -> str:
    """A loopback URL where nothing listens: connection refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# --------------------------------------------------------------------------------------------------
# tiny files in the official formats


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def idx_images(n: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    raw = struct.pack(">IIII", 0x00000803, n, 28, 28) + rng.randbytes(n * 28 * 28)
    return gzip.compress(raw, mtime=0)


def idx_labels(n: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    raw = struct.pack(">II", 0x00000801, n) + bytes(rng.randrange(10) for _ in range(n))
    return gzip.compress(raw, mtime=0)


def _tar_gz(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info, data


def cifar_tar(n: int = 4) -> bytes:
    import numpy as np

    rng = np.random.default_rng(0)
    entries = [(tarfile.TarInfo("cifar-10-batches-py"), None)]
    entries[0][0].type = tarfile.DIRTYPE
    entries[0][0].mode = 0o755
    for batch in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                  "test_batch"]:
        d = {b"batch_label": batch.encode(), b"labels": [int(x) for x in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"{i}.png".encode() for i in range(n)]}
        entries.append(_file(f"cifar-10-batches-py/{batch}", pickle.dumps(d, protocol=2)))
    meta = {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                             b"horse", b"ship", b"truck"], b"num_cases_per_batch": n}
    entries.append(_file("cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=2)))
    return _tar_gz(entries)


def mnist_source(server: Server, *, n: int = 200) -> tuple[Source, dict[str, bytes]]:
    """Two MNIST-style files: a ~160 KB image file (several chunks) and a small label file."""
    blobs = {"train-images-idx3-ubyte.gz": idx_images(n),
             "train-labels-idx1-ubyte.gz": idx_labels(n)}
    files = tuple(
        RemoteFile(filename=fn, md5=_md5(data), urls=(server.add("/mnist/" + fn, data),),
                   dest=f"MNIST/raw/{fn}")
        for fn, data in blobs.items())
    return Source(name="tiny-mnist", description="test", files=files), blobs


def one_file_source(url: str, data: bytes, fn: str = "train-images-idx3-ubyte.gz",
                    *, urls: tuple[str, ...] | None = None) -> Source:
    rf = RemoteFile(filename=fn, md5=_md5(data), urls=urls or (url,), dest=f"MNIST/raw/{fn}")
    return Source(name="one", description="test", files=(rf,))


def fetch(src: Source, root: Path, **kw) -> list[Path]:
    kw.setdefault("progress", False)
    return fetch_dataset(src.name, root, sources={src.name: src}, timeout=TIMEOUT, **kw)


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name.endswith(".part") or ".extract-" in p.name)


# --------------------------------------------------------------------------------------------------
# the real table


def test_official_table_layouts_and_md5s():
    assert set(SOURCES) == {"mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"}
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert [f.dest for f in SOURCES["mnist"].files] == [f"MNIST/raw/{n}" for n in names]
    assert [f.dest for f in SOURCES["fashion-mnist"].files] == [
        f"FashionMNIST/raw/{n}" for n in names]
    assert SOURCES["mnist"].files[0].md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert SOURCES["fashion-mnist"].files[3].md5 == "bb300cfdad3c16e7a12a480ee83cd310"
    mnist_urls = SOURCES["mnist"].files[0].urls
    assert any("ossci-datasets.s3.amazonaws.com/mnist/" in u for u in mnist_urls)
    (c10,), (c100,) = SOURCES["cifar10"].files, SOURCES["cifar100"].files
    assert (c10.dest, c10.extract_to, c10.md5) == (
        "cifar-10-python.tar.gz", "cifar-10-batches-py", "c58f30108f718f92721af3b95e74349a")
    assert (c100.dest, c100.extract_to, c100.md5) == (
        "cifar-100-python.tar.gz", "cifar-100-python", "eb9058c3a382ffc7106e4002c42a8d85")
    assert {f.dest: f.md5 for f in SOURCES["svhn"].files} == {
        "svhn/train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
        "svhn/test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3"}
    for src in SOURCES.values():
        for f in src.files:
            assert re.fullmatch(r"[0-9a-f]{32}", f.md5)
            assert f.urls and all(u.endswith("/" + f.filename) for u in f.urls)
            assert f.dest.endswith(f.filename) and not f.dest.startswith("/")
    with pytest.raises(Exception):
        SOURCES["mnist"].files[0].md5 = "x"  # type: ignore[misc]  # frozen


def test_unknown_and_unfetchable_names(tmp_path):
    with pytest.raises(DataError) as e:
        fetch_dataset("imagenet", tmp_path, progress=False)
    assert "imagenet" in str(e.value)
    assert all(n in str(e.value) for n in SOURCES)
    assert isinstance(e.value, UserError)
    for name, why in [("digits", "scikit-learn"), ("synthetic", "generated"),
                      ("imagefolder", "your own data")]:
        assert name in NOT_FETCHABLE
        with pytest.raises(DataError, match=why) as e:
            fetch_dataset(name, tmp_path, progress=False)
        assert "cifar10" in str(e.value)
    assert not any(tmp_path.iterdir())  # a bad name is refused before anything is written


# --------------------------------------------------------------------------------------------------
# downloads


def test_fresh_download_verified_and_in_place(server, tmp_path, capfd):
    src, blobs = mnist_source(server)
    paths = fetch(src, tmp_path, progress=True)
    assert paths == [tmp_path / "MNIST/raw" / fn for fn in blobs]
    for p, data in zip(paths, blobs.values()):
        assert p.read_bytes() == data
    assert _leftovers(tmp_path) == []
    assert server.ranges() == [None, None]
    assert all(ua == USER_AGENT for ua in server.state.user_agents)
    err = capfd.readouterr().err
    assert "downloaded and verified" in err


def test_present_files_are_skipped(server, tmp_path, capfd):
    src, _ = mnist_source(server)
    fetch(src, tmp_path)
    server.state.requests.clear()
    capfd.readouterr()
    paths = fetch(src, tmp_path, progress=True)
    assert server.state.requests == []
    assert all(p.exists() for p in paths)
    assert capfd.readouterr().err.count("already present") == 2


def test_wrong_file_in_the_way_needs_force(server, tmp_path):
    src, blobs = mnist_source(server)
    target = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the official file")
    with pytest.raises(DataError, match="--force"):
        fetch(src, tmp_path)
    assert target.read_bytes() == b"not the official file"  # never overwritten silently
    fetch(src, tmp_path, force=True)
    assert target.read_bytes() == blobs["train-images-idx3-ubyte.gz"]


def test_resume_partial_download_with_range(server, tmp_path):
    data = idx_images(200)
    src = one_file_source(server.add("/img.gz", data), data)
    part = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:70_000])
    (path,) = fetch(src, tmp_path)
    assert server.ranges() == ["bytes=70000-"]
    assert server.state.bytes_sent == len(data) - 70_000
    assert path.read_bytes() == data
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.state.honour_range = False
    data = idx_images(200)
    src = one_file_source(server.add("/img.gz", data), data)
    part = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 70_000)  # would corrupt the file if appended to
    (path,) = fetch(src, tmp_path)
    assert server.ranges() == ["bytes=70000-"]
    assert server.state.bytes_sent == len(data)
    assert path.read_bytes() == data
    assert not part.exists()


def test_stale_part_from_another_file_is_retried_from_scratch(server, tmp_path):
    data = idx_images(200)
    src = one_file_source(server.add("/img.gz", data), data)
    part = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\1" * 1000)  # wrong prefix: the resumed result fails its md5
    (path,) = fetch(src, tmp_path)
    assert server.ranges() == ["bytes=1000-", None]
    assert path.read_bytes() == data


def test_complete_part_from_killed_run_is_verified_without_body(server, tmp_path):
    data = idx_images(20)
    src = one_file_source(server.add("/img.gz", data), data)
    part = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data)  # downloaded in full, killed before the rename
    (path,) = fetch(src, tmp_path)
    assert server.ranges() == [f"bytes={len(data)}-"]  # answered 416
    assert server.state.bytes_sent == 0
    assert path.read_bytes() == data


def test_corrupt_download_raises_and_leaves_nothing(server, tmp_path):
    server.state.corrupt = True
    data = idx_images(200)
    src = one_file_source(server.add("/img.gz", data), data)
    with pytest.raises(DataError, match="corrupt") as e:
        fetch(src, tmp_path)
    assert "rerun" in str(e.value)
    assert not (tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz").exists()
    assert _leftovers(tmp_path) == []


def test_connection_cut_keeps_part_and_rerun_resumes(server, tmp_path):
    server.state.cut_after, server.state.cuts_left = 50_000, 1
    data = idx_images(200)
    url = server.add("/img.gz", data)
    src = one_file_source(url, data)
    final = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz"
    part = final.with_name(final.name + ".part")
    with pytest.raises(DataError) as e:
        fetch(src, tmp_path)
    msg = str(e.value)
    assert url in msg and "50000" in msg and "rerun" in msg and "resumes" in msg
    assert not final.exists()
    assert part.stat().st_size == 50_000 and part.read_bytes() == data[:50_000]
    (path,) = fetch(src, tmp_path)
    assert server.ranges() == [None, "bytes=50000-"]
    assert path.read_bytes() == data
    assert not part.exists()


def test_next_mirror_is_tried(server, tmp_path):
    data = idx_images(50)
    good = server.add("/good/img.gz", data)
    urls = (_dead_url("/img.gz"), server.base + "/missing/img.gz", good)
    src = one_file_source(good, data, urls=urls)
    (path,) = fetch(src, tmp_path)
    assert path.read_bytes() == data
    assert [p for p, _ in server.state.requests] == ["/missing/img.gz", "/good/img.gz"]


def test_all_mirrors_down_names_each_url(tmp_path):
    data = b"x" * 100
    urls = (_dead_url("/a.gz"), _dead_url("/b.gz"))
    src = one_file_source(urls[0], data, urls=urls)
    with pytest.raises(DataError) as e:
        fetch(src, tmp_path)
    assert urls[0] in str(e.value) and urls[1] in str(e.value)
    assert not (tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz").exists()
    assert _leftovers(tmp_path) == []


def test_offline_fetch_leaves_no_empty_folders_and_advises_a_real_option(tmp_path):
    data = b"x" * 100
    src = one_file_source(_dead_url("/a.gz"), data)
    (tmp_path / "existing").mkdir()
    for root in (tmp_path / "new-root", tmp_path / "existing"):
        with pytest.raises(DataError) as e:
            fetch(src, root)
        assert "--mirror URL (or set LANDSCAPE_MIRROR)" in str(e.value)
    assert not (tmp_path / "new-root").exists()                 # the root it made, lock file and all
    assert [p.name for p in (tmp_path / "existing").iterdir()] in ([], [".landscape-fetch.lock"])
    # `landscape data fetch` has the option it advises
    from typer.main import get_command

    from landscape.cli.main import app
    assert "--mirror" in [o for p in get_command(app).commands["data"].commands["fetch"].params for o in p.opts]


def test_mirror_argument_and_env_replace_base_url(server, tmp_path, monkeypatch):
    src, blobs = mnist_source(server)
    # the table's own URLs are dead; only the mirror can serve the files
    dead = Source(name=src.name, description="", files=tuple(
        RemoteFile(f.filename, f.md5, (_dead_url("/" + f.filename),), f.dest) for f in src.files))
    paths = fetch(dead, tmp_path / "a", mirror=server.base + "/mnist/")
    assert [p.read_bytes() for p in paths] == list(blobs.values())
    monkeypatch.setenv("LANDSCAPE_MIRROR", server.base + "/mnist")
    paths = fetch(dead, tmp_path / "b")
    assert [p.read_bytes() for p in paths] == list(blobs.values())
    # a local folder works as a mirror too
    folder = tmp_path / "offline"
    folder.mkdir()
    for fn, data in blobs.items():
        (folder / fn).write_bytes(data)
    paths = fetch(dead, tmp_path / "c", mirror=str(folder))
    assert [p.read_bytes() for p in paths] == list(blobs.values())


# --------------------------------------------------------------------------------------------------
# archives


def _cifar_source(url: str, data: bytes) -> Source:
    rf = RemoteFile(filename="cifar-10-python.tar.gz", md5=_md5(data), urls=(url,),
                    dest="cifar-10-python.tar.gz", extract_to="cifar-10-batches-py")
    return Source(name="tiny-cifar", description="test", files=(rf,))


def test_tar_archive_extracted_atomically(server, tmp_path):
    data = cifar_tar()
    src = _cifar_source(server.add("/cifar-10-python.tar.gz", data), data)
    (folder,) = fetch(src, tmp_path)
    assert folder == tmp_path / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == [
        "batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
        "data_batch_5", "test_batch"]
    with open(folder / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    assert batch[b"data"].shape == (4, 3072)
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == data  # kept, like torchvision
    assert _leftovers(tmp_path) == []
    # present: no request; force: downloads and swaps the folder whole
    server.state.requests.clear()
    assert fetch(src, tmp_path) == [folder]
    assert server.state.requests == []
    (folder / "data_batch_1").write_bytes(b"damaged")
    fetch(src, tmp_path, force=True)
    assert pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")[b"data"].shape \
        == (4, 3072)
    assert _leftovers(tmp_path) == []


def test_interrupted_extraction_is_redone_from_the_kept_archive(server, tmp_path):
    data = cifar_tar()
    src = _cifar_source(server.add("/c.tar.gz", data), data)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(data)  # verified archive, never extracted
    stale = tmp_path / ".cifar-10-batches-py.extract-dead"  # a killed run's temporary folder
    (stale / "cifar-10-batches-py").mkdir(parents=True)
    (folder,) = fetch(src, tmp_path)
    assert server.state.requests == []
    assert (folder / "test_batch").exists() and not stale.exists()


def _symlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


@pytest.mark.parametrize("evil", [
    _file("../evil.txt", b"pwned"),
    _file("/tmp/landscape-evil-abs.txt", b"pwned"),
    _file("cifar-10-batches-py/../../evil.txt", b"pwned"),
    _symlink("cifar-10-batches-py/link", "/etc/passwd"),
], ids=["dotdot", "absolute", "nested-dotdot", "symlink"])
def test_path_traversal_archive_rejected(server, tmp_path, evil):
    root = tmp_path / "root"
    data = _tar_gz([_file("cifar-10-batches-py/data_batch_1", b"ok"), evil])
    src = _cifar_source(server.add("/evil.tar.gz", data), data)
    with pytest.raises(DataError, match="refusing"):
        fetch(src, root)
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert not Path("/tmp/landscape-evil-abs.txt").exists()
    assert not (root / "cifar-10-batches-py").exists()
    assert _leftovers(root) == []


# --------------------------------------------------------------------------------------------------
# SIGKILL


_CHILD = """
import json, sys
from landscape.data.fetch import fetch_dataset
from landscape.data.sources import RemoteFile, Source
spec = json.loads(sys.argv[1])
rf = RemoteFile(spec["filename"], spec["md5"], tuple(spec["urls"]), spec["dest"])
fetch_dataset("k", spec["root"], sources={"k": Source("k", "", (rf,))}, progress=False, timeout=10)
"""


def _spawn(src: Source, root: Path) -> subprocess.Popen:
    (rf,) = src.files
    spec = {"filename": rf.filename, "md5": rf.md5, "urls": list(rf.urls), "dest": rf.dest,
            "root": str(root)}
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("LANDSCAPE_MIRROR", None)
    return subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(spec)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_sigkill_mid_download_leaves_no_file_and_rerun_completes(server, tmp_path):
    data = idx_images(300)
    src = one_file_source(server.add("/img.gz", data), data)
    final = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz"
    part = final.with_name(final.name + ".part")
    server.state.stall_after = 100_000  # send 100 KB, then hang until released
    proc = _spawn(src, tmp_path)
    try:
        ok = _wait_for(lambda: part.exists() and part.stat().st_size >= 100_000
                       or proc.poll() is not None)
        died = proc.poll() is not None
        assert ok and not died, proc.stderr.read().decode() if died else "no progress in 10 s"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()
    assert not final.exists()
    assert part.read_bytes() == data[:100_000]
    server.state.release.set()
    (path,) = fetch(src, tmp_path)
    assert server.ranges()[-1] == "bytes=100000-"
    assert path.read_bytes() == data and not part.exists()


def test_sigkill_at_random_instants_never_leaves_a_bad_file(server, tmp_path):
    data = idx_images(100)
    src = one_file_source(server.add("/img.gz", data), data)
    final = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz"
    server.state.chunk_delay = 0.04  # 5 chunks: a download takes ~0.2 s after ~0.1 s start-up
    rng = random.Random(1234)
    for _ in range(5):
        proc = _spawn(src, tmp_path)
        try:
            time.sleep(rng.uniform(0.02, 0.45))
            proc.kill()
            proc.wait(5)
        finally:
            proc.stderr.close()
        assert not final.exists() or final.read_bytes() == data
        final.unlink(missing_ok=True)  # start the next round from whatever .part is left
    (path,) = fetch(src, tmp_path)
    assert path.read_bytes() == data
