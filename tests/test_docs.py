"""docs/ against the code: links resolve, and the names and numbers the pages state are the code's."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from harness.backends import dump_dir
from harness.backends.base import STAGES
from harness.metrics import REGIONS
from harness.results import SCHEMA
from harness.tolerances import PROFILES
from reference import audio, image
from reference.stages import DESCRIPTIONS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]


def table_rows(text: str, header: str) -> dict[str, list[str]]:
    """The rows of the markdown table whose header line starts with `header`, keyed by their
    backquoted first cell: name -> the other cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([a-z_0-9]+)`", cells[0])
        if match:
            rows[match.group(1)] = cells[1:]
    return rows


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links {target}, which does not exist"


def test_nothing_points_at_a_design_document_outside_the_repository():
    mentions = set()
    for folder in ("reference", "harness", "fixtures", "reports", "tests", "docs", "examples", ".github"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".md", ".toml", ".yml", ".j2", ".go", ".swift"):
                if "DESIGN" + ".md" in path.read_text(errors="replace"):
                    mentions.add(path.relative_to(ROOT).as_posix())
    if "DESIGN" + ".md" in (ROOT / "README.md").read_text():
        mentions.add("README.md")
    assert not mentions, sorted(mentions)


def test_pipeline_stage_table_is_the_codes():
    rows = table_rows((DOCS / "pipeline.md").read_text(), "| stage | shape |")
    assert set(rows) == set(DESCRIPTIONS)
    for stage, cells in rows.items():
        assert cells[0] in DESCRIPTIONS[stage], f"{stage}: {cells[0]} vs {DESCRIPTIONS[stage]!r}"
        if stage in STAGES:
            assert cells[0] in STAGES[stage]


def test_pipeline_numbers_are_the_codes():
    text = " ".join((DOCS / "pipeline.md").read_text().split())
    for phrase in (f"n_fft {audio.N_FFT}, hop {audio.HOP}", f"{audio.N_MELS} bands, fmin {audio.FMIN} Hz, "
                   f"fmax {audio.FMAX} Hz", f"{audio.PREEMPHASIS} x[n-1]", f"fewer than {audio.MIN_SAMPLES} samples",
                   f"{audio.MAX_SECONDS / 60:g} minutes", f"cv2.rectangle(roi, {image.MASK_RECT}",
                   f"crop[{image.ROI_OFFSET}:{image.ROI_OFFSET + image.ROI_SIZE}, "
                   f"{image.ROI_OFFSET}:{image.ROI_OFFSET + image.ROI_SIZE}]"):
        assert phrase in text, phrase


def test_profile_table_is_the_codes():
    rows = table_rows((DOCS / "metrics.md").read_text(), "| profile |")
    assert set(rows) == set(PROFILES)

    def number(cell: str) -> float | None:
        found = re.match(r"[0-9.e-]+", cell)
        return float(found.group(0)) if found else None

    for name, cells in rows.items():
        t = PROFILES[name]
        assert [number(c) for c in cells[:3]] == [t.identical_pct_min, t.psnr_min, t.feature_max_abs], name


def test_metrics_regions_are_the_codes():
    rows = table_rows((DOCS / "metrics.md").read_text(), "| region |")
    assert list(rows) == list(REGIONS)


def test_port_guide_row_shapes_are_the_codes():
    rows = table_rows((DOCS / "ports.md").read_text(), "| stage | one file holds |")
    assert set(rows) == set(dump_dir.ROW_SHAPES)
    for stage, shape in dump_dir.ROW_SHAPES.items():
        text = "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")
        assert text in rows[stage][0], stage
        assert int(rows[stage][1]) == math.prod(shape), stage


def test_results_page_names_every_schema_key():
    text = (DOCS / "results.md").read_text()
    run = SCHEMA["properties"]["runs"]["items"]["properties"]
    for key in list(SCHEMA["properties"]) + list(run):
        assert f"| `{key}` |" in text, key


def test_goldens_page_names_every_manifest_key():
    from reference.golden import read_manifest
    text = (DOCS / "goldens.md").read_text()
    manifest = read_manifest(ROOT / "fixtures" / "golden" / "tiny-synthetic")
    for key in manifest:
        assert f"| `{key}` |" in text, key


def test_evidence_page_describes_every_finding_kind():
    from harness.diagnosis.evidence.findings import MAKERS
    text = (DOCS / "evidence.md").read_text()
    missing = [kind for kind in MAKERS if f"**`{kind}`**" not in text]
    assert missing == [], f"docs/evidence.md does not describe: {missing}"


def test_coreml_page_names_every_translated_op():
    from harness.coreml.translate import TRANSLATIONS
    text = (DOCS / "coreml.md").read_text()
    accepted = " ".join(text.split("- the ops these models use:", 1)[1].split(";", 1)[0].split())
    missing = [op for op in TRANSLATIONS if op not in accepted]
    assert missing == [], f"docs/coreml.md does not name the translated ops: {missing}"
