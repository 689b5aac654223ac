"""SHA-256 of files: of a whole file, or of the bytes a reader pulls through as it streams."""

import hashlib
import os
from typing import BinaryIO, Protocol

BLOCK_BYTES = 1 << 20


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes, read in blocks."""
    with open(path, "rb") as file:
        return sha256_of_stream(file)


def sha256_of_stream(file: BinaryIO) -> str:
    """The SHA-256 (hex) of the bytes left in a binary file, read in blocks."""
    digest = hashlib.sha256()
    while block := file.read(BLOCK_BYTES):
        digest.update(block)
    return digest.hexdigest()


class Digest(Protocol):
    """What hashlib's hash objects offer (hashlib.sha256())."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class HashingReader:
    """A binary file whose every byte read is also fed to `digest`, so a reader that streams the
    file (gzip, say) hashes it in the same pass; `finish` feeds it what the reader left."""

    def __init__(self, raw: BinaryIO, digest: Digest):
        self.raw = raw
        self.digest = digest

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data

    def readinto(self, buffer) -> int:
        """Fill `buffer` as a binary file does (the fast gzip readers read this way)."""
        count = self.raw.readinto(buffer)
        self.digest.update(memoryview(buffer).cast("B")[:count])
        return count

    def finish(self) -> None:
        """Feed the rest of the file to the digest, which then covers every byte of it."""
        while self.read(BLOCK_BYTES):
            pass
