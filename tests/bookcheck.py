"""Headless Chromium for the book's browser test (tests/test_book.py). Not a test module:
the background book build (conftest.py) renders the pages with it as soon as the HTML
exists, so the browser's time overlaps the other tests as well."""

import concurrent.futures
import json
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# What the machines here need to run Chromium as root without a network (see README).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]
CHECK_SCRIPT = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const imgs = [...document.images].filter(i => i.closest('figure, .cell_output'));
  document.body.setAttribute('data-figures', JSON.stringify(imgs.map(i => [i.getAttribute('src'),
    i.complete && i.naturalWidth > 0, i.getAttribute('alt') || ''])));
  const search = [...document.querySelectorAll('.search-button__button, input[type=search]')]
    .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden');
  document.body.setAttribute('data-search', search.length);
}, 0));
</script></body>"""


PAGES = [
    "intro.html",
    "figures.html",
    "derivations.html",
    "rerun.html",
    "reproducibility.html",
    "decisions.html",
    "notebooks/00_mog_dataset.html",
    "notebooks/01_increasing_experts.html",
    "notebooks/02_expert_dependence.html",
    "notebooks/03_specialized_experts.html",
    "notebooks/04_beyond_the_paper.html",
    "notebooks/05_why_the_numbers_differ.html",
    "notebooks/06_real_human_experts.html",
    "notebooks/07_the_2026_answers.html",
]


def render(page: Path, profiles: Path) -> str:
    """The DOM of ``page`` after load, with the facts CHECK_SCRIPT gathers."""
    probe = page.with_name(f"_probe_{page.name}")
    probe.write_text(page.read_text().replace("</body>", CHECK_SCRIPT, 1))
    proc = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profiles / page.stem}",  # one per page: they run side by side
            "--virtual-time-budget=20000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    probe.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def render_all(html: Path, work: Path) -> None:
    """Render every page of PAGES, two Chromium processes at a time, into work/rendered.json
    (nothing where Chromium is not installed)."""
    if CHROMIUM is None:
        return
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        doms = dict(zip(PAGES, pool.map(lambda page: render(html / page, work / "chromium"), PAGES)))
    (work / "rendered.json").write_text(json.dumps(doms))
