"""JUnit XML of parity runs: one testsuite per machine, one testcase per backend x audio.

A failed run is a <failure> (message: the failed criteria), a skipped run <skipped> (message: why),
an error <error> (message: the reason, text: the log tail). Names match the pytest plugin's
(`ort_cpu[talk_hb]`), classname is `synctalk-parity.<machine>`. Written with xml.etree, so markup
in names and messages is escaped; characters XML 1.0 cannot hold (ANSI escapes in logs, NUL) are
dropped.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from reports.runs import Row, build_rows, fmt, fmt_pct, short_audio

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text) -> str:
    """Text XML 1.0 can hold: ANSI colour codes and control characters removed."""
    return _INVALID_XML.sub("", _ANSI.sub("", str(text)))


def _seconds(row: Row) -> str:
    t = row.run.get("timings") or {}
    value = t.get("wall_with_comparison", t.get("total"))
    return f"{value:.3f}" if isinstance(value, (int, float)) and value >= 0 else "0"


def _metrics_text(row: Row) -> str:
    t = row.run.get("timings") or {}
    parts = [f"frames {row.run.get('frames', 0)}"]
    for region in ("full", "face", "mouth"):
        parts.append(f"{region}: identical {fmt_pct(row.stat(region, 'identical_pct', 'mean'))} %, "
                     f"PSNR min {fmt(row.stat(region, 'psnr', 'min'), '.2f')} dB, "
                     f"SSIM min {fmt(row.stat(region, 'ssim', 'min'), '.5f')}")
    parts.append(f"FPS {fmt(row.fps, '.2f')}, p50 {fmt(t.get('p50_ms'), '.1f')} ms, p99 {fmt(t.get('p99_ms'), '.1f')} ms"
                 + (f", x{row.speedup:.2f} vs {row.baseline}" if row.speedup else ""))
    for stage, drift in (row.run.get("features") or {}).items():
        if isinstance(drift, dict):
            parts.append(f"stage {stage}: " + (str(drift["error"]) if "error" in drift else
                                               f"max abs {fmt(drift.get('max_abs'), '.3g')}"))
    return "\n".join(parts)


def _testcase(parent: ET.Element, row: Row) -> None:
    case = ET.SubElement(parent, "testcase", classname=clean(f"synctalk-parity.{row.machine}"),
                         name=clean(f"{row.backend}[{short_audio(row.audio)}]"), time=_seconds(row))
    why = row.why()
    if row.status == "failed":
        node = ET.SubElement(case, "failure", message=clean("; ".join(why) or "failed"), type="parity")
        node.text = clean("\n".join(why))
    elif row.status == "skipped":
        ET.SubElement(case, "skipped", message=clean("; ".join(why) or "skipped"))
    elif row.status == "error":
        node = ET.SubElement(case, "error", message=clean("; ".join(why) or "error"), type="infrastructure")
        node.text = clean(row.run.get("log_tail") or "\n".join(why))
    if row.run.get("summary") or row.run.get("timings"):
        ET.SubElement(case, "system-out").text = clean(_metrics_text(row))


def _count(rows: list[Row]) -> dict[str, str]:
    return {"tests": str(len(rows)), "failures": str(sum(r.status == "failed" for r in rows)),
            "errors": str(sum(r.status == "error" for r in rows)),
            "skipped": str(sum(r.status == "skipped" for r in rows))}


def render_junit(results: list[dict]) -> str:
    """JUnit XML (a <testsuites> document) for a list of results documents."""
    rows = build_rows(results)
    root = ET.Element("testsuites", name="synctalk-parity", **_count(rows))
    for index, doc in enumerate(results):
        suite_rows = [r for r in rows if r.file_index == index]
        machine = suite_rows[0].machine if suite_rows else str(doc.get("machine", {}).get("name", "unknown"))
        suite = ET.SubElement(root, "testsuite", name=clean(machine), **_count(suite_rows),
                              timestamp=clean(doc.get("created", "")), hostname=clean(machine))
        props = ET.SubElement(suite, "properties")
        info = doc.get("machine", {})
        for key, value in (("profile", doc.get("profile")), ("os", info.get("os")), ("cpu", info.get("cpu")),
                           ("python", info.get("python")), ("partial", doc.get("partial"))):
            if value is not None:
                ET.SubElement(props, "property", name=key, value=clean(value))
        for lib, version in (info.get("libraries") or {}).items():
            ET.SubElement(props, "property", name=clean(lib), value=clean(version))
        for row in suite_rows:
            _testcase(suite, row)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
