"""Downloads to local files: the name to use, and a write that never leaves half a file."""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterable
from email.message import Message
from pathlib import Path
from typing import TextIO


def download_name(content_disposition: str | None, fallback: str) -> str:
    """The file name the server suggests, reduced to a bare name in the current folder
    (a server never chooses the folder), else ``fallback``."""
    if content_disposition:
        message = Message()
        message["content-disposition"] = content_disposition
        suggested = message.get_filename() or ""
        name = suggested.replace("\\", "/").rsplit("/", 1)[-1].strip()
        if name and name not in (".", "..") and not name.startswith("."):
            return name
    return fallback


def save(pieces: Iterable[bytes], target: Path) -> int:
    """Write ``pieces`` to ``target`` through a temporary sibling renamed into place at the
    end, so an interrupted download leaves no partial file under the real name; the size."""
    partial = target.with_name(f".{target.name}.part")
    size = 0
    try:
        with open(partial, "wb") as handle:
            for piece in pieces:
                handle.write(piece)
                size += len(piece)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return size


def copy_text(pieces: Iterable[bytes], out: TextIO) -> int:
    """Write UTF-8 ``pieces`` to a text stream (``-o -``); the number of bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    size = 0
    for piece in pieces:
        out.write(decoder.decode(piece))
        size += len(piece)
    out.write(decoder.decode(b"", final=True))
    out.flush()
    return size
