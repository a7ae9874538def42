"""Writing files so that a failure never leaves a half-written file behind.

Everything minicnn saves goes to a temporary file in the same folder first and
is renamed over the destination only once complete (``os.replace`` is atomic
on POSIX and Windows), so an interrupted save leaves the previous file intact.

A process killed while writing (kill -9, a power cut) cannot remove its temporary
file. Temporary names therefore say who wrote them, ``.NAME.<host>-<pid>.<random>.tmp``,
and the next write to ``NAME`` removes those of processes of this host that are no
longer running. A file of a live process, or of another host (a shared folder),
is never touched.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import zlib

# This host, as 8 hex digits: process ids only mean something on the host that ran them.
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _owner_tag(pid=None) -> str:
    return f"{_HOST}-{os.getpid() if pid is None else pid}"


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":   # os.kill(pid, 0) would terminate it on Windows: assume alive
        return True
    try:
        os.kill(pid, 0)   # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:       # it exists, owned by another user (PermissionError)
        return True
    return True


def remove_stale_temp_files(path) -> list[str]:
    """Remove the temporary files of writes to ``path`` by dead processes of this host.

    Returns the paths removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(re.escape(f".{os.path.basename(path)}.{_HOST}-") +
                         r"(\d+)\.[^.]+\.tmp")
    removed = []
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            match = pattern.fullmatch(name)
            if match and int(match.group(1)) != os.getpid() and \
                    not _pid_alive(int(match.group(1))):
                with contextlib.suppress(OSError):   # another process may remove it first
                    os.remove(os.path.join(folder, name))
                    removed.append(os.path.join(folder, name))
    return removed


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    Temporary files that dead processes left for ``path`` are removed first.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{_owner_tag()}.",
                               suffix=".tmp", dir=folder)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
