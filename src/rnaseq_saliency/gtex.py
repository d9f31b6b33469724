"""Where GTEx publishes each file of a release, and what it is called.

A ``local`` data directory holds the same file names, so one reader serves the portal,
a local copy and the bundled demo dataset.
"""

from __future__ import annotations

from rnaseq_saliency.tissues import all_labels

DEFAULT_BASE_URL = "https://storage.googleapis.com/adult-gtex"

RELEASES = ("v8", "v10")
MEASURES = ("tpm", "reads")
LAYOUTS = ("per_tissue", "matrix")

_FILE_STEM = {"v8": "2017-06-05_v8", "v10": "v10"}
_MEASURE_DIR = {"tpm": "tpms-by-tissue", "reads": "counts-by-tissue"}
_MEASURE_PREFIX = {"tpm": "gene_tpm", "reads": "gene_reads"}
_GENCODE = {"v8": "gencode.v26.GRCh38.genes.gtf", "v10": "gencode.v39.GRCh38.genes.gtf"}
# The whole-matrix files (all tissues in one GCT 1.2) as the GTEx portal's download page names
# them under bulk-gex/<release>/rna-seq/; v10's RNA-SeQC version is part of the name.
_MATRIX_STEM = {
    "v8": "GTEx_Analysis_2017-06-05_v8_RNASeQCv1.1.9",
    "v10": "GTEx_Analysis_v10_RNASeQCv2.4.2",
}


def _check(release: str, measure: str = "tpm") -> None:
    if release not in RELEASES:
        raise ValueError(f"unknown GTEx release {release!r}; expected one of {RELEASES}")
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {MEASURES}")


def tissue_file_name(release: str, measure: str, tissue: str) -> str:
    """``gene_tpm_2017-06-05_v8_liver.gct.gz`` and its v10 / read-count siblings."""
    _check(release, measure)
    return f"{_MEASURE_PREFIX[measure]}_{_FILE_STEM[release]}_{tissue}.gct.gz"


def matrix_file_name(release: str, measure: str) -> str:
    """``GTEx_Analysis_2017-06-05_v8_RNASeQCv1.1.9_gene_tpm.gct.gz``: every tissue in one file."""
    _check(release, measure)
    return f"{_MATRIX_STEM[release]}_{_MEASURE_PREFIX[measure]}.gct.gz"


def attributes_file_name(release: str) -> str:
    _check(release)
    return f"GTEx_Analysis_{release}_Annotations_SampleAttributesDS.txt"


def subjects_file_name(release: str) -> str:
    """The subject phenotypes file (SUBJID, SEX, AGE, DTHHRDY): open-access donor data."""
    _check(release)
    return f"GTEx_Analysis_{release}_Annotations_SubjectPhenotypesDS.txt"


def gtf_file_name(release: str) -> str:
    _check(release)
    return _GENCODE[release]


def tissue_file_url(base_url: str, release: str, measure: str, tissue: str) -> str:
    name = tissue_file_name(release, measure, tissue)
    return f"{base_url.rstrip('/')}/bulk-gex/{release}/rna-seq/{_MEASURE_DIR[measure]}/{name}"


def matrix_file_url(base_url: str, release: str, measure: str) -> str:
    name = matrix_file_name(release, measure)
    return f"{base_url.rstrip('/')}/bulk-gex/{release}/rna-seq/{name}"


def attributes_file_url(base_url: str, release: str) -> str:
    name = attributes_file_name(release)
    return f"{base_url.rstrip('/')}/annotations/{release}/metadata-files/{name}"


def subjects_file_url(base_url: str, release: str) -> str:
    name = subjects_file_name(release)
    return f"{base_url.rstrip('/')}/annotations/{release}/metadata-files/{name}"


def gtf_file_url(base_url: str, release: str) -> str:
    name = gtf_file_name(release)
    return f"{base_url.rstrip('/')}/references/{release}/reference-tables/{name}"


def file_url(base_url: str, release: str, filename: str) -> str:
    """The portal URL of any file of a release, by its published name.

    Raises ValueError for a name that is no GTEx file of the release.
    """
    if filename == attributes_file_name(release):
        return attributes_file_url(base_url, release)
    if filename == gtf_file_name(release):
        return gtf_file_url(base_url, release)
    if filename == subjects_file_name(release):
        return subjects_file_url(base_url, release)
    for measure in MEASURES:
        if filename == matrix_file_name(release, measure):
            return matrix_file_url(base_url, release, measure)
        for tissue in all_labels():
            if filename == tissue_file_name(release, measure, tissue):
                return tissue_file_url(base_url, release, measure, tissue)
    raise ValueError(f"no GTEx {release} file is called {filename!r}")


def donor_id(sample_id: str) -> str:
    """The GTEx donor of a sample: its first two dash-separated fields.

    ``GTEX-1117F-0226-SM-5GZZ7`` -> ``GTEX-1117F``.
    """
    parts = sample_id.split("-")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"sample id {sample_id!r} is not GTEx-shaped (expected GTEX-XXXX-...)")
    return f"{parts[0]}-{parts[1]}"
