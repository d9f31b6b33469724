"""Download one file over HTTP(S): resumable, retried, verified, never half-written at its path.

GTEx files are large (a per-tissue GCT is tens of MB, the whole-matrix file 1.5 GB) and the
portal sits behind a CDN that occasionally drops connections, so a download must survive an
interrupted transfer without starting over and must prove that what it kept is whole.

How one call goes:

- Bytes stream into ``dest + ".part"``. If that file exists from an earlier attempt (in this
  call or an earlier run), the request asks for the rest with ``Range: bytes=N-``. A 206 answer
  appends; a 200 answer (a server that ignores ranges) starts again from byte 0; a 416 answer
  means the partial file is already whole (its size equals the size the server reports) or is
  stale, in which case it is deleted and the transfer restarts from zero.
- Connection errors, timeouts, short bodies and HTTP 5xx/429 answers are retried, waiting
  ``backoff_seconds * 2**i`` after the i-th failed attempt (0-based). Any other 4xx fails at once:
  asking again for a file that is not there cannot help.
- Verification before the file reaches ``dest``: its size equals the size the server announced
  (Content-Length, or the total of Content-Range); a ``.gz`` file decompresses fully, which
  checks every gzip member's CRC and length; its sha256 is recorded in ``dest + ".sha256"`` in
  ``sha256sum`` format. Only then is the partial file renamed onto ``dest`` (an atomic rename in
  the same directory).

The partial file is kept when an attempt fails in transport (a drop, a timeout, a 5xx), also
after the last attempt, so that running the download again resumes where it stopped instead of
fetching gigabytes again. It is deleted when its content is known to be bad (a corrupt gzip,
more bytes than announced), because resuming from bad bytes can only produce a bad file.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from rnaseq_saliency import __version__
from rnaseq_saliency.fileio import atomic_path

log = logging.getLogger(__name__)

USER_AGENT = f"rnaseq-saliency/{__version__} (GTEx downloader; Python urllib)"
CHUNK_BYTES = 1 << 20

_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


class DownloadError(RuntimeError):
    """A download failed for good: a client error, or every attempt failed."""


class _AttemptFailed(Exception):
    """One attempt failed for a reason that a later attempt may not meet.

    ``discard`` says the partial file holds bad bytes and must not be resumed from.
    """

    def __init__(self, reason: str, *, discard: bool = False) -> None:
        super().__init__(reason)
        self.discard = discard


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    retries: int = 5,
    backoff_seconds: float = 2.0,
    timeout_seconds: float = 60.0,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Download ``url`` to ``dest`` and return the file's sha256 as a hex string.

    Args:
        url: an http(s) URL (``file://`` also works, without resume).
        dest: the final path; ``dest + ".part"`` holds the transfer, ``dest + ".sha256"`` the hash.
        retries: how many times to try again after the first attempt fails (0: one attempt).
        backoff_seconds: the wait after the first failed attempt; it doubles after each further one.
        timeout_seconds: the socket timeout for connecting and for each read.
        progress: show a tqdm progress bar on stderr.
        sleep: the function that waits between attempts (tests pass a fake one).

    If ``dest`` exists with a ``.sha256`` file that matches its content, nothing is downloaded.
    Raises DownloadError naming the URL, the number of attempts and the last reason.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    final = Path(dest)
    part = final.with_name(final.name + ".part")
    checksum = final.with_name(final.name + ".sha256")

    recorded = _recorded_digest(final, checksum)
    if recorded is not None:
        log.info("%s is already downloaded (sha256 %s matches); skipping", final, recorded)
        return recorded

    final.parent.mkdir(parents=True, exist_ok=True)
    check_gzip = final.name.endswith(".gz")
    attempts = retries + 1
    reason = ""
    for attempt in range(attempts):
        if attempt:
            delay = backoff_seconds * 2 ** (attempt - 1)
            log.warning(
                "attempt %d of %d for %s failed: %s; retrying in %.3g s",
                attempt,
                attempts,
                url,
                reason,
                delay,
            )
            sleep(delay)
        try:
            expected = _transfer(url, part, timeout_seconds, progress, check_gzip)
            digest = _verify(part, expected, check_gzip)
        except _AttemptFailed as failure:
            reason = str(failure)
            if failure.discard:
                part.unlink(missing_ok=True)
            continue
        with atomic_path(checksum) as tmp:
            tmp.write_text(f"{digest}  {final.name}\n")
        os.replace(part, final)
        log.info(
            "downloaded %s to %s (%d bytes, sha256 %s)", url, final, final.stat().st_size, digest
        )
        return digest

    kept = f"; the partial file {part} is kept, so a later run resumes" if part.exists() else ""
    message = f"could not download {url} after {attempts} attempt(s); last reason: {reason}{kept}"
    log.error("%s", message)
    raise DownloadError(message)


def _recorded_digest(final: Path, checksum: Path) -> str | None:
    """The recorded sha256 of ``final`` if both files exist and the content still matches."""
    if not (final.is_file() and checksum.is_file()):
        return None
    fields = checksum.read_text().split()
    if len(fields) != 2 or fields[1].lstrip("*") != final.name:
        log.warning("%s is not a sha256sum line for %s; downloading again", checksum, final.name)
        return None
    with open(final, "rb") as handle:
        actual = hashlib.file_digest(handle, "sha256").hexdigest()
    if actual != fields[0].lower():
        log.warning("%s does not match its recorded sha256; downloading again", final)
        return None
    return actual


def _request(url: str, offset: int, check_gzip: bool) -> urllib.request.Request:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    # Ask for the stored bytes as they are: a .gz object that a server (Google Cloud Storage
    # among them) tags with Content-Encoding gzip would otherwise arrive decompressed, under a
    # .gz name, and without range support.
    headers["Accept-Encoding"] = "gzip" if check_gzip else "identity"
    return urllib.request.Request(url, headers=headers)


def _open(
    url: str, part: Path, timeout: float, check_gzip: bool
) -> tuple[http.client.HTTPResponse | None, int, int | None]:
    """Send the request; return (response or None if the partial file is whole, offset, total)."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = urllib.request.urlopen(_request(url, offset, check_gzip), timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            total = _content_range_total(error.headers.get("Content-Range"))
            if total == offset:
                log.info("%s: the partial file already holds all %d bytes", url, total)
                return None, offset, total
            log.warning(
                "%s refused to resume at byte %d (HTTP 416, size on server %s); restarting from 0",
                url,
                offset,
                total if total is not None else "unknown",
            )
            part.unlink()
            return _open(url, part, timeout, check_gzip)
        if error.code == 429 or error.code >= 500:
            raise _AttemptFailed(f"HTTP {error.code} {error.reason}") from error
        raise DownloadError(
            f"could not download {url}: HTTP {error.code} {error.reason}; "
            "a client error, so not retrying (check the URL: base URL, release and file name)"
        ) from error
    except urllib.error.URLError as error:
        if isinstance(error.reason, OSError):
            raise _AttemptFailed(f"cannot connect: {error.reason}") from error
        raise DownloadError(f"could not download {url}: {error.reason}") from error
    except (OSError, http.client.HTTPException) as error:
        raise _AttemptFailed(f"connection failed: {error!r}") from error
    return response, offset, None


def _transfer(url: str, part: Path, timeout: float, progress: bool, check_gzip: bool) -> int | None:
    """Fetch ``url`` into ``part`` (resuming when possible); return the announced size, if any."""
    response, offset, total = _open(url, part, timeout, check_gzip)
    if response is None:
        return total
    with response:
        status = response.status
        length = _int_or_none(response.headers.get("Content-Length"))
        if status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise _AttemptFailed(
                    f"asked for bytes from {offset}, server sent a range starting at {start}",
                    discard=True,
                )
            if total is None and length is not None:
                total = offset + length
            mode = "ab"
            log.info("%s: resuming at byte %d", url, offset)
        elif status in (200, None):  # None: a file:// URL, which has no status and no ranges
            if offset:
                log.warning("%s ignored the range request; restarting from byte 0", url)
            offset, total, mode = 0, length, "wb"
            log.info("%s: downloading to %s", url, part)
        else:
            raise _AttemptFailed(f"unexpected HTTP status {status} {response.reason}")
        if total is None:
            log.warning("%s: the server gave no size; completeness rests on other checks", url)

        received = offset
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            while True:
                try:
                    # read1 hands over what has arrived, so bytes received before a timeout
                    # reach the partial file instead of dying in a half-filled buffer.
                    chunk = response.read1(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as error:
                    raise _AttemptFailed(
                        f"connection lost after {received} bytes: {error!r}"
                    ) from error
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    # http.client returns a short body without complaint when the peer closes early.
    if total is not None and received < total:
        raise _AttemptFailed(f"incomplete transfer: received {received} of {total} bytes")
    return total


def _verify(part: Path, expected: int | None, check_gzip: bool) -> str:
    """Check the size and gzip integrity of ``part``; return its sha256 hex digest."""
    size = part.stat().st_size
    if expected is not None and size != expected:
        raise _AttemptFailed(
            f"size mismatch: the file has {size} bytes, the server announced {expected}",
            discard=True,
        )
    if check_gzip and size == 0:
        raise _AttemptFailed("corrupt gzip: the file is empty", discard=True)
    hasher = hashlib.sha256()
    with open(part, "rb") as raw:
        reader = _HashingReader(raw, hasher)
        if check_gzip:
            try:
                # One pass: gzip pulls every byte through the hashing reader.
                with gzip.GzipFile(fileobj=reader, mode="rb") as inflated:  # type: ignore[arg-type]
                    while inflated.read(CHUNK_BYTES):
                        pass
            except (OSError, EOFError, zlib.error) as error:
                raise _AttemptFailed(f"corrupt gzip: {error}", discard=True) from error
        while reader.read(CHUNK_BYTES):
            pass
    return hasher.hexdigest()


class _HashingReader:
    """A read-only file wrapper that feeds every byte it hands out to a hash."""

    mode = "rb"

    def __init__(self, handle: IO[bytes], hasher: hashlib._Hash) -> None:
        self._handle = handle
        self._hasher = hasher

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._hasher.update(data)
        return data


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes a-b/total`` header."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not match or match[1] is None:
        return None, None
    return int(match[1]), _int_or_none(match[3])


def _content_range_total(value: str | None) -> int | None:
    """The total size of a ``Content-Range`` header (``bytes */total`` in a 416 answer)."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    return _int_or_none(match[3]) if match else None


def download_gtex_file(
    data_config: Mapping[str, Any],
    release: str,
    filename: str,
    dest: str | os.PathLike[str],
    checksum_path: str | os.PathLike[str],
    *,
    progress: bool = True,
) -> str:
    """Rule ``download``: fetch a release's file by its published name into ``dest``.

    ``data_config`` is the run's ``data`` config section, read at run time rather than through
    the rule's params: the mirror (``base_url``) and the retry policy change no file, so editing
    them must not fetch anything again (``rnaseq_saliency.settings.RUNTIME_KEYS``).
    ``checksum_path`` must be ``dest + ".sha256"``, where ``download`` writes the checksum.
    """
    from rnaseq_saliency.gtex import file_url

    if os.fspath(checksum_path) != os.fspath(dest) + ".sha256":
        raise ValueError(
            f"rule download: output.checksum must be {dest}.sha256, got {checksum_path}"
        )
    policy = data_config["download"]
    return download(
        file_url(data_config["base_url"], release, filename),
        dest,
        retries=policy["retries"],
        backoff_seconds=policy["backoff_seconds"],
        timeout_seconds=policy["timeout_seconds"],
        progress=progress,
    )
