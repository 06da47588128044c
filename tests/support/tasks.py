"""Tasks as a test reads them back."""

from __future__ import annotations

import base64
import hashlib
import zlib

from tandem.infra.models import Task


def failure(services, task_id: int) -> str:
    """The reason a task failed (it must have)."""
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        assert task.status == "failed"
        return task.failure_reason


def binary_literal(path: str, content_size: int) -> str:
    """A patch adding `path` as `content_size` zero bytes in one `GIT binary patch` literal: a few
    hundred kilobytes of patch, whatever the size of the file."""
    packer, packed = zlib.compressobj(9), b""
    blob = hashlib.sha1(f"blob {content_size}\0".encode())
    for at in range(0, content_size, 1 << 20):
        zeros = bytes(min(1 << 20, content_size - at))
        packed += packer.compress(zeros)
        blob.update(zeros)
    packed += packer.flush()
    lines = []
    for at in range(0, len(packed), 52):
        chunk = packed[at : at + 52]
        length = chr(ord("A") + len(chunk) - 1) if len(chunk) <= 26 else chr(ord("a") + len(chunk) - 27)
        lines.append(length + base64.b85encode(chunk + bytes(-len(chunk) % 4)).decode())
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex {'0' * 40}..{blob.hexdigest()}\n"
        "GIT binary patch\n"
        f"literal {content_size}\n" + "\n".join(lines) + "\n\nliteral 0\nHcmV?d00001\n\n"
    )
