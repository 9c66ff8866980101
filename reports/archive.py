"""Pack a report dir into <report-dir>/conformance-report.tar.gz (everything but the archive).

Members sit under one top folder, `conformance-report/`. Regular files and
folders only: symlinks, temp files (*.tmp) and the archive itself are left out,
and owner names/ids are blanked (the archive goes to auditors, not the runner's
account details). Written to a temp file and renamed, so a reader never sees
half an archive.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

ARCHIVE_NAME = "conformance-report.tar.gz"
TOP = "conformance-report"


def _members(report_dir: Path) -> list[Path]:
    keep = []
    for folder, dirs, files in os.walk(report_dir):  # does not descend into symlinked folders
        dirs.sort()
        base = Path(folder)
        for name in [*dirs, *sorted(files)]:
            path = base / name
            rel = path.relative_to(report_dir).as_posix()
            if path.is_symlink() or name.endswith(".tmp") or rel == ARCHIVE_NAME:
                continue
            keep.append(path)
    return sorted(keep)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(report_dir: str | Path) -> Path:
    report_dir = Path(report_dir)
    target = report_dir / ARCHIVE_NAME
    tmp = report_dir / (ARCHIVE_NAME + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in _members(report_dir):
            arcname = f"{TOP}/{path.relative_to(report_dir).as_posix()}"
            tar.add(path, arcname=arcname, recursive=False, filter=_anonymous)
    os.replace(tmp, target)
    return target
