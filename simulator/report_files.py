"""Which files in a folder a report of ours wrote: the only ones a report, or a run replaced with
``--force``, may overwrite or remove ("the simulator never deletes or overwrites a file it did not write").

A report marks what it writes: ``report.html`` carries a ``<meta name="generator">`` tag in its head,
each PNG chart a text chunk (``Software``) and each SVG chart its creator in the metadata at its top, all
starting with :data:`GENERATOR`. A file is ours when it
has one of the report's names and carries the mark; anything else with those names is someone else's.
Each chart carries its own mark (rather than being trusted because a report.html names it) so that a
report interrupted between writing its charts and its page still recognises the charts next time.

This module imports only :mod:`simulator.storage` (no matplotlib, no pandas), so that
:mod:`simulator.results` can use it when it clears a run folder.
"""

from __future__ import annotations

import re
import struct
import zlib

from .storage import Location

REPORT_FILE = "report.html"
# Every chart a report may write (simulator/report.py); the only names :func:`report_files_of` returns
# besides REPORT_FILE, whatever a file in the folder says.
REPORT_CHARTS = ("fan_revenue.png", "fan_gross_margin.png", "fan_fcf.png", "fan_cash.png", "fcf_histogram.png",
                 "survival.png", "funding_gap.png", "tornado.png")
# The same charts as SVG, which `simulator report --format svg` writes beside the PNGs.
REPORT_SVGS = tuple(name.removesuffix(".png") + ".svg" for name in REPORT_CHARTS)
GENERATOR = "ai-lab-risk-simulator report"
HTML_MARK = f'<meta name="generator" content="{GENERATOR}'
PNG_KEY = "Software"
SVG_MARK = re.compile(rb"<dc:creator>\s*<cc:Agent>\s*<dc:title>" + re.escape(GENERATOR.encode()))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEAD_BYTES = 4096  # the mark is in the page's head, within its first few hundred bytes


def generator(version: str) -> str:
    """The mark a report of simulator ``version`` writes into its page and charts."""
    return f"{GENERATOR} {version}"


def _head(path: Location, size: int) -> bytes:
    with path.fs.open(path.path, "rb") as f:
        return f.read(size)


def is_our_page(path: Location) -> bool:
    try:
        head = _head(path, HEAD_BYTES)
    except (OSError, ValueError):
        return False
    # Before the title: no text from a config can come first (and every such text is escaped).
    return HTML_MARK.encode() in head.split(b"<title>", 1)[0]


def png_text(data: bytes) -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG, up to its image data; empty when ``data`` is no PNG."""
    if not data.startswith(PNG_SIGNATURE):
        return {}
    texts, pos = {}, len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT" or len(body) < length:
            break
        try:
            key, _, rest = body.partition(b"\0")
            if kind == b"tEXt":
                texts[key.decode("latin-1")] = rest.decode("latin-1")
            elif kind == b"zTXt":
                texts[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
            elif kind == b"iTXt":
                compressed, rest = rest[0], rest[2:]
                _, _, rest = rest.partition(b"\0")  # language tag
                _, _, text = rest.partition(b"\0")  # translated keyword
                texts[key.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
        except (ValueError, IndexError, zlib.error):
            continue  # a damaged chunk says nothing about who wrote the file
    return texts


def is_our_chart(path: Location) -> bool:
    try:
        data = path.read_bytes() if path.name.endswith(".png") else _head(path, HEAD_BYTES)
    except (OSError, ValueError):
        return False
    if path.name.endswith(".svg"):  # matplotlib writes the mark as the creator in the metadata at the top
        return SVG_MARK.search(data.split(b"</metadata>", 1)[0]) is not None
    return png_text(data).get(PNG_KEY, "").startswith(GENERATOR)


def report_files_of(folder: str | Location) -> list[str]:
    """The names of the files in ``folder`` that a report of ours wrote (``report.html`` and its charts), in
    the order of :data:`REPORT_CHARTS`, page first; empty when there are none or they are someone else's.
    Only these may be overwritten by a new report or removed when the run in ``folder`` is replaced."""
    folder = Location(folder)
    present = set(folder.names())
    ours = [REPORT_FILE] if REPORT_FILE in present and is_our_page(folder / REPORT_FILE) else []
    return ours + [name for name in (*REPORT_CHARTS, *REPORT_SVGS) if name in present and is_our_chart(folder / name)]
