"""A real headless-browser render of report.html (Debian chromium), checked by decoding the PNG.

Marked `browser`. Installs chromium with apt-get when it is missing; skips (with
the install command as the reason) when that is not possible. The screenshot is
kept in the test's tmp dir; set GITOPS_CONFORMANCE_SCREENSHOT=<file.png> to
also copy it somewhere to look at.
"""
pytest_plugins = ["pytester"]

import os  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.test_reports import _isolate, make_sample_run  # noqa: E402,F401 - the autouse isolation

INSTALL = "apt-get install -y chromium"
NOT_CERTIFIED_RED = (0xB4, 0x23, 0x18)  # .verdict.bad background in reports/html.py

pytestmark = pytest.mark.browser


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        for cmd in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "chromium"]):
            subprocess.run(cmd, capture_output=True, timeout=900, check=False,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            found = shutil.which("chromium")
            if found:
                return found
    pytest.skip(f"needs Debian chromium: {INSTALL}")


def decode_png(data: bytes, max_rows: int | None = None) -> tuple[int, int, int, list[bytes]]:
    """(width, height, channels, rows) of an 8-bit RGB/RGBA non-interlaced PNG, unfiltered."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompressobj().decompress(b"".join(idat), (stride + 1) * (max_rows or height))
    rows, prev = [], bytearray(stride)
    for y in range(min(height, max_rows or height)):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = prev[i], (prev[i - channels] if i >= channels else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def test_report_renders_in_headless_chromium(pytester, tmp_path):
    report_dir = pytester.path / "out"
    make_sample_run(pytester, report_dir)
    html = report_dir / "report.html"
    assert html.is_file()
    browser = _chromium()
    png = tmp_path / "report.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", "--force-color-profile=srgb",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
           "--window-size=1280,2000", html.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert png.is_file(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    if os.environ.get("GITOPS_CONFORMANCE_SCREENSHOT"):
        shutil.copyfile(png, os.environ["GITOPS_CONFORMANCE_SCREENSHOT"])
    data = png.read_bytes()
    assert len(data) > 20_000, f"suspiciously small screenshot: {len(data)} bytes"

    width, height, channels, rows = decode_png(data, max_rows=700)
    assert (width, height) == (1280, 2000)
    non_white = sum(1 for row in rows for i in range(0, len(row), channels * 4)
                    if row[i:i + 3] != b"\xff\xff\xff")
    assert non_white > len(rows) * width / 4 * 0.2, "the top of the page is (almost) blank"
    # the NOT CERTIFIED banner: a wide red band at the top, i.e. the CSS was applied
    red = sum(1 for i in range(0, len(rows[40]), channels)
              if all(abs(rows[40][i + k] - NOT_CERTIFIED_RED[k]) <= 10 for k in range(3)))
    assert red > width * 0.8, f"no red verdict banner at y=40 ({red} red pixels)"
    # and the banner is not the whole page: the content below is mostly light
    light = sum(1 for i in range(0, len(rows[600]), channels) if min(rows[600][i:i + 3]) > 200)
    assert light > width * 0.5
