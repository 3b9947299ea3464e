"""docs/ against the code: links resolve, and the names and numbers the pages state are the code's."""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import pytest

from harness.backends import dump_dir
from harness.verdicts.metrics import REGIONS
from harness.verdicts.results import SCHEMA
from harness.verdicts.tolerances import PROFILES
from reference import audio, image
from reference.stages import DESCRIPTIONS, STAGES

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


def _leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) of every command that takes options, subcommands spelled out."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _leaf_commands(sub, path + (name,))


def _cli_sections() -> dict[str, list[str]]:
    """docs/cli.md's `### synctalk-parity NAME` sections: NAME -> its lines (a NAME twice fails)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in (DOCS / "cli.md").read_text().splitlines():
        if line.startswith("#"):
            current = None
            heading = re.fullmatch(r"### synctalk-parity ([a-z -]+)", line)
            if heading:
                current = heading.group(1)
                assert current not in sections, f"docs/cli.md has the heading of `{current}` twice"
                sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def _documented_options(lines: list[str]) -> list[tuple[str, ...]]:
    """The first cell of every row of a command's option table, as the names it holds: its long flags,
    or a positional argument's name."""
    rows = []
    for line in lines:
        if not line.startswith("| `"):
            continue
        first = re.split(r"(?<!\\)\|", line.strip().strip("|"))[0].strip()
        flags = tuple(re.findall(r"`(--[a-z0-9-]+)", first))
        rows.append(flags or (re.match(r"`([^` ]+)", first).group(1).replace("\\|", "|"),))
    return rows


def test_cli_page_documents_every_command_and_option_of_the_parser_once():
    from harness.cli_args import build_parser
    sections = _cli_sections()
    commands = dict(_leaf_commands(build_parser()))
    assert sorted(sections) == sorted(" ".join(path) for path in commands), \
        "docs/cli.md: one `### synctalk-parity NAME` heading per command of the parser, and no other"
    for path, parser in commands.items():
        name = " ".join(path)
        expected = sorted(tuple(o for o in a.option_strings if o.startswith("--")) if a.option_strings else (a.metavar,)
                          for a in parser._actions if not isinstance(a, argparse._HelpAction))
        documented = _documented_options(sections[name])
        missing = [o for o in expected if o not in documented]
        unknown = [o for o in documented if o not in expected]
        twice = sorted({o for o in documented if documented.count(o) > 1})
        assert (missing, unknown, twice) == ([], [], []), \
            f"docs/cli.md, `{name}`: undocumented {missing}, not the parser's {unknown}, documented twice {twice}"


def github_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens,
    `-1`, `-2` ... for repeats."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = None if in_code else re.match(r"#{1,6} (.+)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_link_anchors_resolve(page):
    for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", page.read_text()):
        linked = (page.parent / target) if target else page
        assert anchor in github_anchors(linked.read_text()), \
            f"{page.name} links {target or page.name}#{anchor}, a heading {linked.name} does not have"


def test_ci_runs_the_readme_commands():
    """.ci/run sets up as the README's install line does (less the demo, quietly) and runs exactly the
    README's test command; the README keeps the command that refreshes the lock."""
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    install, test = blocks[0], blocks[1]
    ci = [line.replace(" --quiet", "") for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    steps = install.split(" && ")
    assert steps[-1] == ".venv/bin/synctalk-parity demo", steps
    for step in steps[:-1]:
        assert step in ci, f".ci/run does not do the README's set-up step {step!r}"
    assert test in ci, f".ci/run does not run the README's test command {test!r}"
    assert any("uv pip compile pyproject.toml" in b and "-o requirements.lock" in b for b in blocks[2:]), \
        "README.md lost the command that refreshes requirements.lock"


def test_coreml_page_names_every_translated_op():
    from harness.coreml.translate import TRANSLATIONS
    text = (DOCS / "coreml.md").read_text()
    accepted = " ".join(text.split("- the ops these models use:", 1)[1].split(";", 1)[0].split())
    missing = [op for op in TRANSLATIONS if op not in accepted]
    assert missing == [], f"docs/coreml.md does not name the translated ops: {missing}"
