"""The markdown report, sized for a CI job summary ($GITHUB_STEP_SUMMARY): verdict table, then why.

    synctalk-parity report linux/results.json m1/results.json --markdown >> "$GITHUB_STEP_SUMMARY"

Text from results files is escaped: markdown punctuation gets a backslash and `<`, `>`, `&`
become entities, so a backend name or a failure message cannot inject markup; log tails go into a
fenced block whose fence is longer than any backtick run inside.
"""
from __future__ import annotations

import re

from reports.runs import STATUS_WORDS, Row, build_rows, counts, fmt, short_audio

ICONS = {"passed": "✅", "failed": "❌", "skipped": "⏭️", "error": "💥"}
LOG_LINES = 30
_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def escape(text) -> str:
    """One line of text safe inside a markdown table cell or list item."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _verdict_line(row: Row) -> str:
    psnr = row.stat("full", "psnr", "min")
    speed = f"×{row.speedup:.2f}" if row.speedup else "–"
    reasons = row.why()
    why = reasons[0] if reasons else ("all criteria met" if row.status == "passed" else "")
    if len(why) > 160:
        why = why[:157] + "..."
    if len(reasons) > 1:
        why += f" (+{len(reasons) - 1} more)"
    return (f"| {ICONS.get(row.status, '')} {STATUS_WORDS.get(row.status, row.status)} | {escape(row.machine)} | "
            f"{escape(row.backend)} | {escape(short_audio(row.audio))} | {fmt(psnr, '.2f')} | "
            f"{fmt(row.fps, '.1f')} | {speed} | {escape(why)} |")


def render_markdown(results: list[dict]) -> str:
    """Markdown for a list of results documents (as `harness.verdicts.results.read_results` returns them)."""
    rows = build_rows(results)
    n = counts(rows)
    title = ", ".join(f"{n[s]} {s}" for s in STATUS_WORDS if n[s]) or "no runs"
    machines = list(dict.fromkeys(r.machine for r in rows))
    lines = [f"## SyncTalk_2D parity: {title}", "",
             f"{len(rows)} runs on {len(machines)} machine{'s' if len(machines) != 1 else ''}: "
             + ", ".join(escape(m) for m in machines) + ".", "",
             "| verdict | machine | backend | audio | PSNR min (dB) | FPS | speed-up | why |",
             "|---|---|---|---|---:|---:|---:|---|"]
    lines += [_verdict_line(row) for row in rows]
    bad = [r for r in rows if r.status != "passed" and r.why()]
    if bad:
        lines += ["", "### Why", ""]
        for row in bad:
            head = (f"- {ICONS.get(row.status, '')} **{escape(row.backend)}** · {escape(short_audio(row.audio))} · "
                    f"{escape(row.machine)} ({STATUS_WORDS.get(row.status, row.status)})")
            lines.append(head)
            lines += [f"  - {escape(text)}" for text in row.why()]
            tail = row.run.get("log_tail")
            if row.status == "error" and isinstance(tail, str) and tail.strip():
                tail = "\n".join(tail.strip().splitlines()[-LOG_LINES:])
                lines += ["", "  <details><summary>log tail</summary>", "",
                          *("  " + line for line in _fence(tail).splitlines()), "", "  </details>", ""]
    speedups = sorted({r.baseline for r in rows if r.baseline})
    if speedups:
        lines += ["", f"Speed-up is against the {' / '.join(escape(b) for b in speedups)} run on the same machine and "
                      "audio."]
    return "\n".join(lines) + "\n"
