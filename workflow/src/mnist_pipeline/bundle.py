"""Archives read from where they are: a file of their own, or a member of a zip bundle (EMNIST).

A dataset shipped as one zip of IDX archives is downloaded once, verified against the pin of the
whole zip, and each archive is then read straight out of it, never extracted: zipfile inflates a
member as it is read and checks the member's CRC-32 when its last byte has been read, so a damaged
member fails its conversion and no second copy is ever written to disk.
"""

import difflib
import os
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .digest import sha256_of, sha256_of_stream
from .errors import MnistPipelineError

_AGAIN = "Delete it and rerun, so it is downloaded and verified again."


class BundleError(MnistPipelineError, ValueError):
    """A zip bundle that is not its pin, not a zip, or lacks a member the config names."""


@dataclass(frozen=True)
class ZipMember:
    """The archive `name` inside the zip file `bundle`."""

    bundle: str
    name: str

    def __str__(self) -> str:
        return f"{self.bundle} (member {self.name})"


Source = str | os.PathLike | ZipMember


def source_name(source: Source) -> str:
    """How messages name an archive: its path, or the zip's path and the member's name."""
    return str(source) if isinstance(source, ZipMember) else os.fspath(source)


@contextmanager
def open_source(source: Source) -> Iterator[BinaryIO]:
    """The archive's bytes as a binary file (a member is inflated as it is read)."""
    if not isinstance(source, ZipMember):
        with open(source, "rb") as file:
            yield file
        return
    try:
        bundle = zipfile.ZipFile(source.bundle)
    except zipfile.BadZipFile as err:
        raise BundleError(f"{source.bundle}: not a zip archive ({err}). {_AGAIN}") from err
    with bundle:
        try:
            member = bundle.open(source.name)
        except KeyError as err:
            raise BundleError(f"{source}: no such member in the zip. {_AGAIN}") from err
        # A compression method zipfile lacks (Deflate64, which Windows' zip uses for large
        # files), or a member behind a password.
        except (NotImplementedError, RuntimeError) as err:
            raise BundleError(
                f"{source}: zipfile cannot read it ({err}). Make the zip again with deflate and "
                "no password (zip -r, or python -m zipfile -c), and pin the new zip."
            ) from err
        with member:
            yield member


def source_sha256(source: Source) -> str:
    """The SHA-256 (hex) of the archive's bytes (of a member: as stored, once inflated)."""
    with open_source(source) as file:
        return sha256_of_stream(file)


def bundle_members(path: str | os.PathLike, bundle: Mapping[str, Any]) -> dict[str, ZipMember]:
    """The members of the zip `path` that `bundle` names, once the zip is checked.

    `bundle` is {"size", "sha256", "key", "members"}: the zip's pins, the config key that holds
    them, and {kind: {"name", "key", "size" (optional)}}, each member's path in the zip and the
    config key of its entry (datasets.<name>.files.<archive>). The zip must have its pinned size
    and SHA-256 (it may have been replaced since its download) and hold every member, with the
    size given if one is; otherwise BundleError, naming the file, the key and what to do.
    """
    name = os.fspath(path)
    size = Path(path).stat().st_size
    found = sha256_of(path) if size == bundle["size"] else None
    if found != bundle["sha256"]:
        what = f"SHA-256 {found}" if found else f"{size} bytes"
        pinned = f"SHA-256 {bundle['sha256']}" if found else f"{bundle['size']} bytes"
        raise BundleError(
            f"{name}: {what}, but {bundle['key']} pins {pinned}: these are not the bytes that "
            f"were downloaded and verified (was the file replaced or changed since?). {_AGAIN}"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
    except zipfile.BadZipFile as err:
        raise BundleError(
            f"{name}: not a zip archive ({err}), but {bundle['key']} pins it as the zip the "
            "dataset's archives are read from. Check that pin and the file names under "
            f"{bundle['key'].removesuffix('.bundle')}.files."
        ) from err
    problems = [
        problem
        for member in bundle["members"].values()
        if (problem := _member_problem(member, infos))
    ]
    if problems:
        raise BundleError(f"{name}: " + "; ".join(problems))
    return {kind: ZipMember(name, m["name"]) for kind, m in bundle["members"].items()}


def _member_problem(member: Mapping[str, Any], infos: Mapping[str, zipfile.ZipInfo]) -> str:
    """What is wrong with one member the config names, or "" if nothing is."""
    info = infos.get(member["name"])
    if info is None:
        near = difflib.get_close_matches(member["name"], infos, n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"it holds {len(infos)} members"
        return (
            f"no member {member['name']!r} (config key '{member['key']}.name'); {hint} Give "
            f"{member['key']}.name the member's path inside the zip, as `unzip -l` lists it"
        )
    if "size" in member and info.file_size != member["size"]:
        return (
            f"member {member['name']!r} has {info.file_size} bytes, but "
            f"{member['key']}.size pins {member['size']}: the zip is not "
            "the one these pins were made for; check them (or leave the member's size out)"
        )
    return ""
