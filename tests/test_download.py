"""The downloader against a real HTTP server on 127.0.0.1 that misbehaves on request.

No test reaches the network: the server serves files the tests generate, supports Range
requests, and can drop connections, stall, corrupt a gzip, answer errors, hide the size or
ignore ranges.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import logging
import random
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from snakemake_cli import run_snakemake

from rnaseq_saliency import gtex
from rnaseq_saliency.download import DownloadError, download

GZ_PATH = "/files/gene_tpm_test.gct.gz"
TXT_PATH = "/files/attributes.txt"
DROP_AT = 300_000


@dataclass
class Faults:
    """What the server does wrong; counters are per request, then it behaves."""

    drop_requests: int = 0  # close the connection after `drop_after` body bytes...
    drop_after: int = DROP_AT
    stall_requests: int = 0  # send `drop_after` bytes, then hang until the test ends
    errors: list[int] = field(default_factory=list)  # statuses to answer first, in order
    corrupt_requests: int = 0  # serve a .gz with flipped bytes in the middle
    no_content_length: bool = False
    ignore_range: bool = False


@dataclass
class Seen:
    path: str
    range: str | None
    user_agent: str | None


class FileServer:
    """A threaded HTTP/1.0 server on 127.0.0.1 serving in-memory files by URL path."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.faults = Faults()
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def _take(self, name: str) -> bool:
        """Use up one request's worth of the fault counter ``name``, if any is left."""
        with self._lock:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
            return left > 0

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.seen.append(
                    Seen(self.path, self.headers.get("Range"), self.headers.get("User-Agent"))
                )
                with server._lock:
                    error = server.faults.errors.pop(0) if server.faults.errors else None
                if error is not None:
                    self.send_error(error)
                    return
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                if self.path.endswith(".gz") and server._take("corrupt_requests"):
                    middle = len(data) // 2
                    data = data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64])
                    data += server.files[self.path][middle + 64 :]
                start, status = 0, 200
                asked = self.headers.get("Range")
                if asked and not server.faults.ignore_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", asked)[1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                if not server.faults.no_content_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server._take("stall_requests"):
                    self.wfile.write(body[: server.faults.drop_after])
                    self.wfile.flush()
                    server.release.wait(10)
                    return
                if server._take("drop_requests"):
                    # HTTP/1.0: returning closes the socket, so the client sees a short body.
                    self.wfile.write(body[: server.faults.drop_after])
                    return
                self.wfile.write(body)

        return Handler


def gct_like_text(n_bytes: int, seed: int) -> bytes:
    """Random-ish tab-separated text that gzip shrinks only to about half."""
    rng = random.Random(seed)
    rows = []
    size = 0
    while size < n_bytes:
        row = "\t".join(rng.randbytes(6).hex() for _ in range(16)) + "\n"
        rows.append(row)
        size += len(row)
    return "".join(rows).encode()


@pytest.fixture(scope="module")
def payloads() -> dict[str, bytes]:
    return {
        GZ_PATH: gzip.compress(gct_like_text(2_500_000, seed=1), compresslevel=1, mtime=0),
        TXT_PATH: gct_like_text(700_000, seed=2),
    }


@pytest.fixture
def server(payloads: dict[str, bytes]) -> Iterator[FileServer]:
    instance = FileServer(dict(payloads))
    instance.start()
    yield instance
    instance.stop()


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def fetch(server: FileServer, path: str, dest: Path, **kwargs: object) -> tuple[str, FakeSleep]:
    sleep = FakeSleep()
    options = {"retries": 3, "backoff_seconds": 0.01, "timeout_seconds": 5.0, "progress": False}
    options.update(kwargs)
    digest = download(server.url(path), dest, sleep=sleep, **options)  # type: ignore[arg-type]
    return digest, sleep


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_writes_file_and_sha256(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    dest = tmp_path / "nested" / "gene_tpm_test.gct.gz"
    digest, sleep = fetch(server, GZ_PATH, dest)
    assert dest.read_bytes() == payloads[GZ_PATH]
    assert digest == sha256(payloads[GZ_PATH])
    assert Path(f"{dest}.sha256").read_text() == f"{digest}  gene_tpm_test.gct.gz\n"
    assert not Path(f"{dest}.part").exists()
    assert sleep.delays == []
    assert len(server.seen) == 1
    assert server.seen[0].range is None
    assert "rnaseq-saliency" in (server.seen[0].user_agent or "")


def test_existing_file_with_matching_sha256_is_not_fetched_again(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    dest = tmp_path / "attributes.txt"
    first, _ = fetch(server, TXT_PATH, dest)
    second, _ = fetch(server, TXT_PATH, dest)
    assert first == second == sha256(payloads[TXT_PATH])
    assert len(server.seen) == 1


def test_existing_file_not_matching_its_sha256_is_fetched_again(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    dest = tmp_path / "attributes.txt"
    fetch(server, TXT_PATH, dest)
    dest.write_bytes(b"edited by hand\n")
    digest, _ = fetch(server, TXT_PATH, dest)
    assert len(server.seen) == 2
    assert dest.read_bytes() == payloads[TXT_PATH]
    assert digest == sha256(payloads[TXT_PATH])


def test_resume_after_a_dropped_connection_uses_a_range_request(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    server.faults.drop_requests = 1
    dest = tmp_path / "gene_tpm_test.gct.gz"
    digest, sleep = fetch(server, GZ_PATH, dest, backoff_seconds=0.25)
    assert [seen.range for seen in server.seen] == [None, f"bytes={DROP_AT}-"]
    assert dest.read_bytes() == payloads[GZ_PATH]
    assert digest == sha256(payloads[GZ_PATH])
    assert sleep.delays == [0.25]


def test_a_stalled_transfer_times_out_and_resumes(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    server.faults.stall_requests = 1
    dest = tmp_path / "gene_tpm_test.gct.gz"
    digest, _ = fetch(server, GZ_PATH, dest, timeout_seconds=0.3)
    assert [seen.range for seen in server.seen] == [None, f"bytes={DROP_AT}-"]
    assert digest == sha256(payloads[GZ_PATH])


def test_5xx_and_429_are_retried_with_exponential_backoff(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.faults.errors = [503, 429, 500]
    dest = tmp_path / "attributes.txt"
    with caplog.at_level(logging.WARNING, logger="rnaseq_saliency.download"):
        digest, sleep = fetch(server, TXT_PATH, dest, retries=3, backoff_seconds=0.5)
    assert sleep.delays == [0.5, 1.0, 2.0]
    assert digest == sha256(payloads[TXT_PATH])
    retries = [r for r in caplog.records if r.name == "rnaseq_saliency.download"]
    assert [r.levelno for r in retries] == [logging.WARNING] * 3
    assert "503" in retries[0].getMessage() and "429" in retries[1].getMessage()


def test_clear_error_after_the_last_retry_and_nothing_at_the_final_path(
    server: FileServer, tmp_path: Path
) -> None:
    server.faults.errors = [503] * 10
    dest = tmp_path / "attributes.txt"
    with pytest.raises(DownloadError) as caught:
        fetch(server, TXT_PATH, dest, retries=2, backoff_seconds=0.1)
    message = str(caught.value)
    assert server.url(TXT_PATH) in message
    assert "3 attempt" in message
    assert "503" in message
    assert len(server.seen) == 3
    assert not dest.exists()
    assert not Path(f"{dest}.sha256").exists()


def test_unreachable_server_fails_after_retries(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.txt"
    sleep = FakeSleep()
    with pytest.raises(DownloadError, match=re.escape(url)) as caught:
        download(url, tmp_path / "x.txt", retries=1, backoff_seconds=0.01, sleep=sleep)
    assert "2 attempt" in str(caught.value)
    assert sleep.delays == [0.01]
    assert not (tmp_path / "x.txt").exists()


def test_corrupt_gzip_fails_after_retries_and_leaves_no_file(
    server: FileServer, tmp_path: Path
) -> None:
    server.faults.corrupt_requests = 100
    dest = tmp_path / "gene_tpm_test.gct.gz"
    with pytest.raises(DownloadError) as caught:
        fetch(server, GZ_PATH, dest, retries=2)
    message = str(caught.value)
    assert server.url(GZ_PATH) in message and "3 attempt" in message
    assert "corrupt gzip" in message
    # A corrupt partial is deleted, never resumed from: every attempt starts at byte 0.
    assert [seen.range for seen in server.seen] == [None, None, None]
    assert not dest.exists()
    assert not Path(f"{dest}.part").exists()
    assert not Path(f"{dest}.sha256").exists()


def test_corrupt_gzip_once_is_retried(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    server.faults.corrupt_requests = 1
    dest = tmp_path / "gene_tpm_test.gct.gz"
    digest, sleep = fetch(server, GZ_PATH, dest)
    assert digest == sha256(payloads[GZ_PATH])
    assert len(sleep.delays) == 1


def test_404_fails_at_once_without_retries(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "missing.txt"
    with pytest.raises(DownloadError, match="HTTP 404") as caught:
        fetch(server, "/files/missing.txt", dest, retries=5)
    assert server.url("/files/missing.txt") in str(caught.value)
    assert len(server.seen) == 1
    assert not dest.exists()


def test_server_ignoring_range_still_yields_the_right_file(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    server.faults.drop_requests = 1
    server.faults.ignore_range = True
    dest = tmp_path / "gene_tpm_test.gct.gz"
    digest, _ = fetch(server, GZ_PATH, dest)
    # The client asked to resume; the server sent the whole file again with a 200.
    assert [seen.range for seen in server.seen] == [None, f"bytes={DROP_AT}-"]
    assert dest.read_bytes() == payloads[GZ_PATH]
    assert digest == sha256(payloads[GZ_PATH])


def test_truncated_body_is_detected_and_a_later_run_resumes(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    server.faults.drop_requests = 1
    dest = tmp_path / "attributes.txt"  # no gzip check: only the size can tell
    with pytest.raises(DownloadError, match=f"received {DROP_AT} of {len(payloads[TXT_PATH])}"):
        fetch(server, TXT_PATH, dest, retries=0)
    assert not dest.exists()
    assert Path(f"{dest}.part").read_bytes() == payloads[TXT_PATH][:DROP_AT]

    digest, _ = fetch(server, TXT_PATH, dest, retries=0)
    assert server.seen[-1].range == f"bytes={DROP_AT}-"
    assert dest.read_bytes() == payloads[TXT_PATH]
    assert digest == sha256(payloads[TXT_PATH])


def test_without_content_length_a_whole_file_is_accepted(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    server.faults.no_content_length = True
    dest = tmp_path / "attributes.txt"
    digest, _ = fetch(server, TXT_PATH, dest)
    assert dest.read_bytes() == payloads[TXT_PATH]
    assert digest == sha256(payloads[TXT_PATH])


def test_without_content_length_a_truncated_gzip_is_caught(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    server.faults.no_content_length = True
    server.faults.drop_requests = 1
    dest = tmp_path / "gene_tpm_test.gct.gz"
    digest, sleep = fetch(server, GZ_PATH, dest)
    # No size to compare: the gzip check found the cut, discarded it and fetched it again.
    assert [seen.range for seen in server.seen] == [None, None]
    assert len(sleep.delays) == 1
    assert dest.read_bytes() == payloads[GZ_PATH]
    assert digest == sha256(payloads[GZ_PATH])


def test_a_complete_partial_file_is_verified_not_fetched(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    dest = tmp_path / "gene_tpm_test.gct.gz"
    Path(f"{dest}.part").write_bytes(payloads[GZ_PATH])
    digest, _ = fetch(server, GZ_PATH, dest)
    # The server answered 416 with the size, which equals the partial's size.
    assert [seen.range for seen in server.seen] == [f"bytes={len(payloads[GZ_PATH])}-"]
    assert digest == sha256(payloads[GZ_PATH])
    assert dest.read_bytes() == payloads[GZ_PATH]


def test_a_stale_partial_longer_than_the_file_restarts_from_zero(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    dest = tmp_path / "attributes.txt"
    stale = payloads[TXT_PATH] + b"bytes of some older, longer version\n"
    Path(f"{dest}.part").write_bytes(stale)
    digest, _ = fetch(server, TXT_PATH, dest)
    assert [seen.range for seen in server.seen] == [f"bytes={len(stale)}-", None]
    assert dest.read_bytes() == payloads[TXT_PATH]
    assert digest == sha256(payloads[TXT_PATH])


# --- where GTEx publishes each file ------------------------------------------------------------

BASE = "https://storage.googleapis.com/adult-gtex"

# Written out in full, so that a change to the URL builders cannot also change what they are
# checked against. The v8 URLs and the v10 TPM and GTF paths follow ../shared/data/README.md; the
# v10 read-count and attributes paths follow the same portal layout.


@pytest.mark.parametrize(
    ("release", "measure", "tissue", "url"),
    [
        (
            "v8",
            "tpm",
            "liver",
            "https://storage.googleapis.com/adult-gtex/bulk-gex/v8/rna-seq/tpms-by-tissue/gene_tpm_2017-06-05_v8_liver.gct.gz",
        ),
        (
            "v8",
            "reads",
            "brain_spinal_cord_cervical_c-1",
            "https://storage.googleapis.com/adult-gtex/bulk-gex/v8/rna-seq/counts-by-tissue/gene_reads_2017-06-05_v8_brain_spinal_cord_cervical_c-1.gct.gz",
        ),
        (
            "v10",
            "tpm",
            "whole_blood",
            "https://storage.googleapis.com/adult-gtex/bulk-gex/v10/rna-seq/tpms-by-tissue/gene_tpm_v10_whole_blood.gct.gz",
        ),
        (
            "v10",
            "reads",
            "liver",
            "https://storage.googleapis.com/adult-gtex/bulk-gex/v10/rna-seq/counts-by-tissue/gene_reads_v10_liver.gct.gz",
        ),
    ],
)
def test_tissue_file_url(release: str, measure: str, tissue: str, url: str) -> None:
    assert gtex.tissue_file_url(BASE, release, measure, tissue) == url
    assert gtex.tissue_file_url(BASE + "/", release, measure, tissue) == url


@pytest.mark.parametrize(
    ("release", "url"),
    [
        (
            "v8",
            "https://storage.googleapis.com/adult-gtex/annotations/v8/metadata-files/GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt",
        ),
        (
            "v10",
            "https://storage.googleapis.com/adult-gtex/annotations/v10/metadata-files/GTEx_Analysis_v10_Annotations_SampleAttributesDS.txt",
        ),
    ],
)
def test_attributes_file_url(release: str, url: str) -> None:
    assert gtex.attributes_file_url(BASE, release) == url


@pytest.mark.parametrize(
    ("release", "url"),
    [
        (
            "v8",
            "https://storage.googleapis.com/adult-gtex/annotations/v8/metadata-files/GTEx_Analysis_v8_Annotations_SubjectPhenotypesDS.txt",
        ),
        (
            "v10",
            "https://storage.googleapis.com/adult-gtex/annotations/v10/metadata-files/GTEx_Analysis_v10_Annotations_SubjectPhenotypesDS.txt",
        ),
    ],
)
def test_subjects_file_url(release: str, url: str) -> None:
    # Issue 21: the shortcut check reads donor sex and age from it, for every data source.
    assert gtex.subjects_file_url(BASE, release) == url
    name = url.rsplit("/", 1)[1]
    assert gtex.subjects_file_name(release) == name
    assert gtex.file_url(BASE, release, name) == url


@pytest.mark.parametrize(
    ("release", "url"),
    [
        (
            "v8",
            "https://storage.googleapis.com/adult-gtex/references/v8/reference-tables/gencode.v26.GRCh38.genes.gtf",
        ),
        (
            "v10",
            "https://storage.googleapis.com/adult-gtex/references/v10/reference-tables/gencode.v39.GRCh38.genes.gtf",
        ),
    ],
)
def test_gtf_file_url(release: str, url: str) -> None:
    assert gtex.gtf_file_url(BASE, release) == url


@pytest.mark.parametrize(
    ("release", "measure", "url"),
    [
        (
            "v8",
            "tpm",
            "https://storage.googleapis.com/adult-gtex/bulk-gex/v8/rna-seq/GTEx_Analysis_2017-06-05_v8_RNASeQCv1.1.9_gene_tpm.gct.gz",
        ),
        (
            "v8",
            "reads",
            "https://storage.googleapis.com/adult-gtex/bulk-gex/v8/rna-seq/GTEx_Analysis_2017-06-05_v8_RNASeQCv1.1.9_gene_reads.gct.gz",
        ),
        (
            "v10",
            "tpm",
            "https://storage.googleapis.com/adult-gtex/bulk-gex/v10/rna-seq/GTEx_Analysis_v10_RNASeQCv2.4.2_gene_tpm.gct.gz",
        ),
        (
            "v10",
            "reads",
            "https://storage.googleapis.com/adult-gtex/bulk-gex/v10/rna-seq/GTEx_Analysis_v10_RNASeQCv2.4.2_gene_reads.gct.gz",
        ),
    ],
)
def test_matrix_file_url(release: str, measure: str, url: str) -> None:
    assert gtex.matrix_file_url(BASE, release, measure) == url


def test_unknown_release_or_measure_is_rejected() -> None:
    with pytest.raises(ValueError, match="v9"):
        gtex.tissue_file_url(BASE, "v9", "tpm", "liver")
    with pytest.raises(ValueError, match="counts"):
        gtex.tissue_file_url(BASE, "v8", "counts", "liver")


# --- the workflow's download rule, end to end ------------------------------------------------


@pytest.mark.workflow
def test_download_rule_fetches_gtex_files(
    server: FileServer, payloads: dict[str, bytes], tmp_path: Path
) -> None:
    release, measure = "v8", "tpm"
    names = {
        "gct": gtex.tissue_file_name(release, measure, "liver"),
        "attributes": gtex.attributes_file_name(release),
        "gtf": gtex.gtf_file_name(release),
    }
    urls = {
        "gct": gtex.tissue_file_url(server.base_url, release, measure, "liver"),
        "attributes": gtex.attributes_file_url(server.base_url, release),
        "gtf": gtex.gtf_file_url(server.base_url, release),
    }
    contents = {
        "gct": payloads[GZ_PATH],
        "attributes": payloads[TXT_PATH],
        "gtf": b'chr1\tHAVANA\tgene\t11869\t14403\t.\t+\t.\tgene_id "ENSG00000223972.5";\n',
    }
    server.files = {url.removeprefix(server.base_url): contents[key] for key, url in urls.items()}
    # One drop, so that the rule goes through a resume too. The three jobs race for the first
    # request, so the cut must fall inside the smallest file (the 71-byte GTF) as well.
    server.faults.drop_requests = 1
    server.faults.drop_after = 16

    workdir = tmp_path / "run"
    workdir.mkdir()
    config = workdir / "config.yaml"
    config.write_text(
        "data:\n"
        "  source: gtex\n"
        f"  base_url: {server.base_url}\n"
        "  tissues: [liver]\n"
        "  download: {retries: 2, backoff_seconds: 0.01, timeout_seconds: 10}\n"
    )
    targets = [f"resources/gtex/{release}/{name}" for name in names.values()]
    run_snakemake(workdir, *targets, configfile=config, timeout=300)
    for key, name in names.items():
        path = workdir / "resources/gtex" / release / name
        assert path.read_bytes() == contents[key], name
        assert Path(f"{path}.sha256").read_text() == f"{sha256(contents[key])}  {name}\n"
        assert not Path(f"{path}.part").exists()
        log = workdir / "logs/download" / release / f"{name}.log"
        assert urls[key] in log.read_text()
    assert {seen.path for seen in server.seen} == set(server.files)
    assert any(seen.range for seen in server.seen)


@pytest.mark.workflow
@pytest.mark.parametrize(("release", "measure"), [("v8", "tpm"), ("v10", "reads")])
def test_matrix_layout_downloads_one_matrix_file_and_no_tissue_file(
    tmp_path: Path, release: str, measure: str
) -> None:
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = workdir / "config.yaml"
    config.write_text(
        "data:\n"
        "  source: gtex\n"
        f"  release: {release}\n"
        f"  measure: {measure}\n"
        "  layout: matrix\n"
        "  tissues: [liver, lung]\n"
    )
    result = run_snakemake(
        workdir, "--dry-run", "results/expression/summary.tsv", configfile=config, timeout=120
    )
    matrix = f"resources/gtex/{release}/{gtex.matrix_file_name(release, measure)}"
    downloads = re.findall(r"rule download:\n\s+output: (\S+),", result.stdout)
    assert sorted(downloads) == sorted(
        [
            matrix,
            f"resources/gtex/{release}/{gtex.attributes_file_name(release)}",
            f"resources/gtex/{release}/{gtex.gtf_file_name(release)}",
        ]
    )
    assert "rule ingest_matrix:" in result.stdout and "rule ingest:" not in result.stdout
