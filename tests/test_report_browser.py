"""The HTML report as a reader sees it: the real workflow on a small slice of the demo data, then
`snakemake --report`, opened in headless Chromium and clicked through like a person would.

Snakemake's report is a single-page React app: the first screen shows the workflow graph and a
menu of result categories; clicking a category lists its files (or its subcategories, such as
"Per tissue"), and a file's eye button draws the figure, from a data: URI in the page. The
checks drive Chromium through chromedriver's W3C WebDriver HTTP interface (standard library
only), read the DOM and screenshots, and record every request the page and the browser's
network stack made. Host names do not resolve in this browser (--host-resolver-rules), so
nothing can leave the machine even by mistake; the checks still prove that the report asked for
nothing outside the file.

Needs Debian's chromium and chromium-driver (or CHROMIUM / CHROMEDRIVER pointing at a Chrome and
its chromedriver); skipped without them, except under CI=true, where that is an error.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake_cli import run_snakemake

REPO = Path(__file__).resolve().parents[1]

# Small, but trained enough (lr, epochs) that most held-out samples are called right, so the
# per-tissue heatmaps show saliency rather than the "nothing to show" placeholder.
REPORT_CONFIG = {
    "data": {"source": "demo", "tissues": ["liver", "pancreas", "brain_cortex", "whole_blood"]},
    "demo": {"n_genes": 200},
    "augment": {"min_samples": 30, "pca_tissues": ["liver", "pancreas"]},
    "train": {"epochs": 4, "batch_size": 32, "lr": 0.01, "replicates": 1},
    "model": {"hidden": [32, 16, 8]},
    "saliency": {"top_n": 5, "validation_top_k": 5},
}
EVALUATION_CATEGORY = "4. Evaluation"
SALIENCY_CATEGORY = "5. Saliency"
PER_TISSUE = "Per tissue"
# Schemes that reach the network; file:, data:, blob:, about: and chrome: stay inside.
NETWORK_SCHEMES = {"http", "https", "ws", "wss", "ftp"}
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
# Mean absolute difference (colour values 0..1) between a screenshot's figure area and the
# figure file redrawn at that size: about 0.01 when the figure is on screen, above 0.1 for a
# blank area or another figure.
SCREENSHOT_TOLERANCE = 0.04

pytestmark = pytest.mark.workflow


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def browser_binaries() -> tuple[str, str] | None:
    """(Chromium, chromedriver) paths, or None when either is missing."""
    # Debian's /usr/bin/chromium is a shell wrapper that adds flags of its own; the binary
    # behind it takes exactly the flags given here.
    candidates = ["/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome"]
    if os.environ.get("CHROMIUM"):
        candidates = [os.environ["CHROMIUM"]]
    chromium = next((found for c in candidates if (found := shutil.which(c))), None)
    driver = shutil.which(os.environ.get("CHROMEDRIVER") or "chromedriver")
    if not chromium or not driver:
        return None
    return chromium, driver


def require_browser() -> tuple[str, str]:
    binaries = browser_binaries()
    if binaries is None:
        message = (
            "headless Chromium not found: install Debian's chromium and chromium-driver "
            "(or set CHROMIUM and CHROMEDRIVER)"
        )
        if in_ci():
            pytest.fail(message + " (CI=true: the report test must run)")
        pytest.skip(message)
    return binaries


class WebDriverError(RuntimeError):
    pass


class Browser:
    """Headless Chromium under chromedriver, spoken to over WebDriver's HTTP JSON protocol."""

    def __init__(self, chromium: str, driver: str, workdir: Path) -> None:
        self.net_log = workdir / "net-log.json"
        self.driver_log = workdir / "chromedriver.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.driver = subprocess.Popen(
            [driver, f"--port={port}", f"--log-path={self.driver_log}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.session: str | None = None
        try:
            self._wait_for_driver()
            args = [
                "--headless",
                "--no-sandbox",  # tests run as root in CI containers
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-dev-shm-usage",
                f"--user-data-dir={workdir / 'profile'}",
                "--window-size=1400,1000",
                # Every host name fails to resolve: nothing can leave the machine.
                "--host-resolver-rules=MAP * ~NOTFOUND",
                f"--log-net-log={self.net_log}",
            ]
            capabilities = {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
                # The DevTools network events of the page, read back with se/log.
                "goog:loggingPrefs": {"performance": "ALL"},
            }
            value = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
            self.session = value["sessionId"]
        except BaseException:
            self.close()
            raise

    def _wait_for_driver(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/status")
                return
            except (OSError, WebDriverError) as error:
                if time.monotonic() > deadline or self.driver.poll() is not None:
                    raise WebDriverError(
                        f"chromedriver did not start; see {self.driver_log}"
                    ) from error
                time.sleep(0.1)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:2000]
            raise WebDriverError(f"{method} {path}: HTTP {error.code}: {detail}") from None

    def _session_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self._session_call("POST", "/url", {"url": url})

    def find_all(self, xpath: str, timeout: float = 10.0) -> list[str]:
        """Element ids matching xpath, waiting up to timeout for the app to render them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._session_call("POST", "/elements", {"using": "xpath", "value": xpath})
            if found or time.monotonic() > deadline:
                return [next(iter(element.values())) for element in found]
            time.sleep(0.1)

    def find(self, xpath: str) -> str:
        found = self.find_all(xpath)
        if not found:
            raise AssertionError(f"the report shows no element {xpath}\n{self.visible_text()}")
        return found[0]

    def click(self, xpath: str) -> None:
        self._session_call("POST", f"/element/{self.find(xpath)}/click", {})

    def text(self, element: str) -> str:
        return self._session_call("GET", f"/element/{element}/text")

    def attribute(self, element: str, name: str) -> str:
        return self._session_call("GET", f"/element/{element}/attribute/{name}")

    def rect(self, element: str) -> dict[str, float]:
        return self._session_call("GET", f"/element/{element}/rect")

    def loaded(self, image: str) -> bool:
        script = "return arguments[0].complete && arguments[0].naturalWidth > 0;"
        element = {"element-6066-11e4-a52e-4f735466cecf": image}
        return self._session_call("POST", "/execute/sync", {"script": script, "args": [element]})

    def visible_text(self) -> str:
        return self.text(self.find_all("//body")[0])[:3000]

    def dom(self) -> str:
        return self._session_call("GET", "/source")

    def screenshot(self) -> bytes:
        return base64.b64decode(self._session_call("GET", "/screenshot"))

    def page_requests(self) -> list[dict[str, Any]]:
        """The page's DevTools Network.requestWillBeSent events since the last call."""
        entries = self._session_call("POST", "/se/log", {"type": "performance"})
        events = [json.loads(entry["message"])["message"] for entry in entries]
        return [e["params"] for e in events if e["method"] == "Network.requestWillBeSent"]

    def close(self) -> None:
        """End the session (Chromium exits and finishes its net log), then chromedriver."""
        if self.session is not None:
            try:
                self._session_call("DELETE", "")
            except (OSError, WebDriverError):
                pass
            self.session = None
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()


@dataclass
class Shown:
    """What one figure view showed: the DOM's image and the screenshot around it."""

    image_src: str
    image_rect: dict[str, float]
    image_loaded: bool
    screenshot: bytes


@dataclass
class Visit:
    """Everything one browser session saw while clicking through the report."""

    evaluation_rows: list[str] = field(default_factory=list)
    confusion_matrix: Shown | None = None
    saliency_subcategories: list[str] = field(default_factory=list)
    tissue_rows: list[str] = field(default_factory=list)
    heatmap_tissue: str = ""
    heatmap: Shown | None = None
    page_requests: list[dict[str, Any]] = field(default_factory=list)
    net_log: dict[str, Any] = field(default_factory=dict)


def read_png(data: bytes) -> np.ndarray:
    """RGB values in 0..1 of a PNG."""
    from matplotlib import image as mpimg

    pixels = np.asarray(mpimg.imread(io.BytesIO(data), format="png"), dtype=np.float32)
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return pixels[..., :3]


def screenshot_difference(shown: Shown, figure: bytes) -> float:
    """Mean colour difference between the figure file and where the report drew it."""
    screen = read_png(shown.screenshot)
    x0, y0 = round(shown.image_rect["x"]), round(shown.image_rect["y"])
    width, height = round(shown.image_rect["width"]), round(shown.image_rect["height"])
    x1, y1 = min(x0 + width, screen.shape[1]), min(y0 + height, screen.shape[0])
    assert x1 - x0 > 50 and y1 - y0 > 50, f"figure barely on screen: {shown.image_rect}"
    original = read_png(figure)
    # The browser scales the figure to its box: sample the file at the same places.
    rows = (np.arange(y1 - y0) * original.shape[0] / height).astype(int)
    cols = (np.arange(x1 - x0) * original.shape[1] / width).astype(int)
    return float(np.abs(screen[y0:y1, x0:x1] - original[rows][:, cols]).mean())


def data_uri_bytes(uri: str) -> bytes:
    header, _, payload = uri.partition(",")
    assert header.startswith("data:image/png") and header.endswith(";base64"), header[:100]
    return base64.b64decode(payload)


def read_net_log(path: Path) -> dict[str, Any]:
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # A browser that did not shut down cleanly leaves the event list open.
        return json.loads(text.rstrip().rstrip(",") + "]}")


def leaving_page_requests(requests: list[dict[str, Any]]) -> list[str]:
    """URLs that the page asked for from another machine."""
    return [r["request"]["url"] for r in requests if leaves_machine(r["request"]["url"])]


def leaving_net_requests(net_log: dict[str, Any]) -> list[str]:
    """Network requests a page started (not the browser's own housekeeping) to other machines.

    Chromium's background services (component updates, sign-in, time) send requests of their
    own even with background networking off; their initiator is "not an origin". Requests of a
    page carry the page's origin ("null" for a file: page).
    """
    names = {number: name for name, number in net_log["constants"]["logEventTypes"].items()}
    urls = []
    for event in net_log["events"]:
        params = event.get("params") or {}
        if names.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        if params.get("initiator") == "not an origin":
            continue
        if leaves_machine(params["url"]):
            urls.append(params["url"])
    return urls


def leaves_machine(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in NETWORK_SCHEMES and (parts.hostname or "") not in LOOPBACK_HOSTS


def show_figure(browser: Browser, row_xpath: str) -> Shown:
    """Click the eye button of a result row, wait for the figure, screenshot it."""
    browser.click(f"{row_xpath}//a[1]")
    image = browser.find("//img[starts-with(@src, 'data:image/png')]")
    deadline = time.monotonic() + 10
    while not browser.loaded(image) and time.monotonic() < deadline:
        time.sleep(0.1)
    return Shown(
        image_src=browser.attribute(image, "src"),
        image_rect=browser.rect(image),
        image_loaded=browser.loaded(image),
        screenshot=browser.screenshot(),
    )


def menu_item(label: str) -> str:
    return f"//a[span[normalize-space()='{label}']]"


def row_texts(browser: Browser) -> list[str]:
    return [browser.text(row) for row in browser.find_all("//tbody/tr")]


def correctly_called_tissue(workdir: Path) -> str:
    """A tissue with correctly classified held-out samples (its heatmap shows saliency)."""
    predictions = pd.read_csv(workdir / "results/evaluation/predictions.tsv", sep="\t")
    correct = predictions[predictions["correct"].astype(str).str.lower() == "true"]
    assert len(correct), "the small model called no held-out sample right"
    return str(correct["tissue"].value_counts().index[0])


@pytest.fixture(scope="module")
def browser_binaries_or_skip() -> tuple[str, str]:
    return require_browser()


@pytest.fixture(scope="module")
def report_run(browser_binaries_or_skip: tuple[str, str], tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("report_run")
    (workdir / "config.yaml").write_text(yaml.safe_dump(REPORT_CONFIG))
    run_snakemake(workdir)
    run_snakemake(workdir, "--report", str(workdir / "report.html"))
    return workdir


@pytest.fixture(scope="module")
def visit(report_run: Path, browser_binaries_or_skip: tuple[str, str], tmp_path_factory) -> Visit:
    """One browser session through the report: evaluation files, confusion matrix, heatmap."""
    chromium, driver = browser_binaries_or_skip
    workdir = tmp_path_factory.mktemp("browser")
    seen = Visit(heatmap_tissue=correctly_called_tissue(report_run))
    browser = Browser(chromium, driver, workdir)
    try:
        browser.open((report_run / "report.html").as_uri())
        browser.click(menu_item(EVALUATION_CATEGORY))
        seen.evaluation_rows = row_texts(browser)
        seen.confusion_matrix = show_figure(
            browser, "//tbody/tr[td[contains(., 'confusion_matrix.png')]]"
        )
        (workdir / "confusion_matrix_view.png").write_bytes(seen.confusion_matrix.screenshot)
        (workdir / "evaluation_view.html").write_text(browser.dom())

        browser.click("//nav//a[normalize-space()='Results'] | //a[normalize-space()='Results']")
        browser.click(menu_item(SALIENCY_CATEGORY))
        seen.saliency_subcategories = [browser.text(a) for a in browser.find_all("//ul/li/a[span]")]
        browser.click(menu_item(PER_TISSUE))
        seen.tissue_rows = row_texts(browser)
        seen.heatmap = show_figure(
            browser, f"//tbody/tr[td[normalize-space()='{seen.heatmap_tissue}']]"
        )
        (workdir / "heatmap_view.png").write_bytes(seen.heatmap.screenshot)
        (workdir / "heatmap_view.html").write_text(browser.dom())
        seen.page_requests = browser.page_requests()
    finally:
        browser.close()
    seen.net_log = read_net_log(browser.net_log)
    return seen


def test_result_list_shows_the_evaluation_files(visit: Visit) -> None:
    for name in ("confusion_matrix.png", "classification_report.html", "summary.json"):
        assert f"results/evaluation/{name}" in visit.evaluation_rows, visit.evaluation_rows


def test_confusion_matrix_is_drawn(visit: Visit, report_run: Path) -> None:
    shown = visit.confusion_matrix
    assert shown is not None and shown.image_loaded
    figure = (report_run / "results/evaluation/confusion_matrix.png").read_bytes()
    assert data_uri_bytes(shown.image_src) == figure
    assert screenshot_difference(shown, figure) < SCREENSHOT_TOLERANCE


def test_saliency_heatmaps_are_listed_per_tissue(visit: Visit) -> None:
    assert PER_TISSUE in visit.saliency_subcategories, visit.saliency_subcategories
    assert sorted(visit.tissue_rows) == sorted(REPORT_CONFIG["data"]["tissues"])


def test_a_saliency_heatmap_is_drawn(visit: Visit, report_run: Path) -> None:
    shown = visit.heatmap
    assert shown is not None and shown.image_loaded
    heatmap = report_run / f"results/saliency/heatmaps/{visit.heatmap_tissue}.png"
    assert data_uri_bytes(shown.image_src) == heatmap.read_bytes()
    assert screenshot_difference(shown, heatmap.read_bytes()) < SCREENSHOT_TOLERANCE
    other = report_run / "results/evaluation/confusion_matrix.png"
    assert screenshot_difference(shown, other.read_bytes()) > SCREENSHOT_TOLERANCE


def test_the_report_asks_for_nothing_outside_the_machine(visit: Visit, report_run: Path) -> None:
    report_url = (report_run / "report.html").as_uri()
    own = [r for r in visit.page_requests if r.get("documentURL") == report_url]
    assert own, "no DevTools network events recorded for the report page"
    assert leaving_page_requests(visit.page_requests) == []
    assert leaving_net_requests(visit.net_log) == []


def test_the_network_checks_catch_a_page_that_reaches_out(
    browser_binaries_or_skip: tuple[str, str], tmp_path: Path
) -> None:
    """The two checks above can fail: a page with a remote image, stylesheet and fetch."""
    page = tmp_path / "leaky.html"
    page.write_text(
        '<html><body><img src="https://example.org/a.png">'
        '<link rel="stylesheet" href="http://fonts.example.net/x.css">'
        '<script>fetch("https://api.example.com/y").catch(() => {})</script></body></html>'
    )
    browser = Browser(*browser_binaries_or_skip, tmp_path)
    requests: list[dict[str, Any]] = []
    try:
        browser.open(page.as_uri())
        deadline = time.monotonic() + 10
        # Each read of the performance log returns the events since the previous read.
        while len(leaving_page_requests(requests)) < 3:
            assert time.monotonic() < deadline, requests
            requests += browser.page_requests()
            time.sleep(0.2)
    finally:
        browser.close()
    expected = {"https://example.org/a.png", "http://fonts.example.net/x.css"}
    assert expected <= set(leaving_page_requests(requests))
    assert expected <= set(leaving_net_requests(read_net_log(browser.net_log)))
