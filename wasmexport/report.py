"""Verification reports for people: a rich table on a terminal, and a standalone HTML file.

    from wasmexport.report import print_report, write_html
    print_report(result.report)                 # rich table on a TTY, plain text otherwise
    write_html(result.report, "report.html")    # summary, error histograms, worst elements

The HTML file is self-contained (inline CSS, the plot as a base64 PNG) and needs
matplotlib (``pip install 'wasmexport[report]'``).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .verifier import _FAULT, Comparison, VerifyReport

__all__ = ["print_report", "rich_table", "write_html"]

logger = logging.getLogger(__name__)


def _with_flips(report: VerifyReport) -> bool:
    """Whether a comparison counts label flips (exact integer/string outputs)."""
    return any(getattr(c, "flips", None) is not None for c in report.comparisons)


def _head(report: VerifyReport) -> tuple[str, ...]:
    head = ("output", "compared", "batch", "shape", "max abs err", "max rel err", "ok")
    return (*head[:-1], "label flips", head[-1]) if _with_flips(report) else head


def _row(c: Comparison, flips: bool = False) -> tuple[str, ...]:
    n = getattr(c, "flips", None)
    return (
        c.output,
        f"{c.reference} vs {c.candidate}",
        "-" if c.batch is None else str(c.batch),
        "x".join(map(str, c.shape)) or "scalar",
        f"{c.max_abs_err:.3g}",
        f"{c.max_rel_err:.3g}",
        *([] if not flips else ["-" if n is None else str(n)]),
        "yes" if c.passed else "NO",
    )


def _why(c: Comparison) -> str:
    """One line on a failed comparison: the worst element and the suspect."""
    text = (
        f"{c.output} ({c.reference} vs {c.candidate}, batch {c.batch}): worst at index "
        f"{c.worst_index}: expected {c.expected_at_worst:.9g}, got {c.got_at_worst:.9g}; "
        f"suspect {_FAULT.get((c.reference, c.candidate), '?')}"
    )
    return text + (f"; {c.note}" if c.note else "")


def rich_table(report: VerifyReport):
    """The report as a rich Table (failed rows in red)."""
    from rich.table import Table

    verdict = "[green]PASSED[/green]" if report.passed else "[bold red]FAILED[/bold red]"
    table = Table(
        title=f"Verification {verdict}",
        caption=f"tolerance: |got - expected| <= {report.atol:g} + "
        f"{report.rtol:g} * |expected|",
    )
    flips = _with_flips(report)
    for i, name in enumerate(_head(report)):
        table.add_column(name, justify="right" if i >= 4 else "left", no_wrap=True)
    for c in report.comparisons:
        table.add_row(*_row(c, flips), style=None if c.passed else "red")
    return table


def print_report(report: VerifyReport, *, file=None, rich: bool | None = None) -> None:
    """Print the report: a rich table when `file` (stdout) is a terminal, else plain text.

    Args:
        report: the verification report.
        file: the stream; sys.stdout when None.
        rich: force the table on (True) or off (False); None decides by isatty().
    """
    file = sys.stdout if file is None else file
    if rich is None:
        rich = bool(getattr(file, "isatty", None) and file.isatty())
    if not rich:
        print(report, file=file)
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=file)
    table = rich_table(report)
    flips = _with_flips(report)
    cells = [_head(report), *(_row(c, flips) for c in report.comparisons)]
    needed = sum(max(map(len, col)) + 3 for col in zip(*cells, strict=True)) + 1
    if needed > console.width:  # too narrow for whole cells: the plain table instead
        print(report, file=file)
        return
    console.print(table)
    for c in report.failures():
        console.print(f"  [red]{escape(_why(c))}[/red]", highlight=False)


def _plot_png(report: VerifyReport) -> bytes | None:
    """Histograms of |wasm - reference| per output (log x), as PNG bytes; None if empty."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    kept = [c for c in report.comparisons if c.errors is not None and c.errors.size]
    if not kept:
        return None
    fig, axes = plt.subplots(len(kept), 1, figsize=(7, 2.2 * len(kept)), squeeze=False)
    floor = 1e-12  # exact matches are drawn in the leftmost bin
    for ax, c in zip(axes[:, 0], kept, strict=True):
        err = np.clip(np.nan_to_num(c.errors, posinf=1e300), floor, None)
        top = max(float(err.max()), floor * 10)
        bins = np.logspace(np.log10(floor), np.log10(top) + 0.1, 40)
        ax.hist(err, bins=bins, color="#3b7dd8" if c.passed else "#d83b3b")
        ax.set_xscale("log")
        ax.set_yscale("log")
        limit = report.atol
        ax.axvline(limit, color="k", ls="--", lw=1, label=f"atol {limit:g}")
        where = f"{c.output}: {c.reference} vs {c.candidate}, batch {c.batch}"
        ax.set_title(where, fontsize=9)
        ax.set_xlabel("|got - expected| (exact matches at 1e-12)", fontsize=8)
        ax.set_ylabel("elements", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-family: monospace; }
tr.fail td { background: #fde8e8; }
.pass { color: #187a2f; } .fail-text { color: #b00020; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


def _esc(value) -> str:
    return html.escape(str(value))


def write_html(
    report: VerifyReport, path: str | os.PathLike, *, title: str = "wasmexport verification"
) -> Path:
    """Write the report as one self-contained HTML file and return its path.

    The page has the summary table, why each failure happened (worst element and the
    suspected side), a histogram of |got - expected| per comparison on a log scale
    (a sample of at most MAX_KEPT_ERRORS elements per output) and the 10 worst elements
    of each comparison.

    Raises:
        ImportError: matplotlib is not installed (``pip install 'wasmexport[report]'``).
    """
    try:
        png = _plot_png(report)
    except ImportError as e:
        raise ImportError(
            "the HTML report needs matplotlib: pip install 'wasmexport[report]'"
        ) from e
    verdict = "PASSED" if report.passed else "FAILED"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}: {verdict}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="{"pass" if report.passed else "fail-text"}"><b>{verdict}</b>: '
        f"tolerance <code>|got - expected| &lt;= {report.atol:g} + {report.rtol:g} * "
        f"|expected|</code>; max abs err {report.max_abs_err:.3g}. Written "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.</p>",
        "<h2>Summary</h2><table><tr>"
        + "".join(f"<th>{h}</th>" for h in _head(report))
        + "</tr>",
    ]
    for c in report.comparisons:
        cells = "".join(
            f'<td class="num">{_esc(v)}</td>' if i >= 4 else f"<td>{_esc(v)}</td>"
            for i, v in enumerate(_row(c, _with_flips(report)))
        )
        parts.append(f'<tr class="{"" if c.passed else "fail"}">{cells}</tr>')
    parts.append("</table>")
    if report.failures():
        parts.append("<h2>Why it failed</h2><ul>")
        parts += [f"<li>{_esc(_why(c))}</li>" for c in report.failures()]
        parts.append(
            "</ul><p>framework vs onnxruntime failing points at the ONNX export; "
            "onnxruntime vs wasm failing points at the wasm runtime.</p>"
        )
    if png is not None:
        data = base64.b64encode(png).decode()
        parts.append(
            "<h2>Error distribution</h2>"
            f'<img alt="histograms of the absolute error per output" '
            f'src="data:image/png;base64,{data}">'
        )
    parts.append("<h2>Worst elements</h2>")
    for c in report.comparisons:
        if not c.worst:
            continue
        parts.append(
            f"<h3>{_esc(c.output)}: {_esc(c.reference)} vs {_esc(c.candidate)}, "
            f"batch {_esc(c.batch)}</h3><table><tr><th>index</th><th>expected</th>"
            "<th>got</th><th>abs err</th></tr>"
        )
        for index, expected, got, err in c.worst:
            parts.append(
                f"<tr><td>{_esc(index)}</td><td class='num'>{expected:.9g}</td>"
                f"<td class='num'>{got:.9g}</td><td class='num'>{err:.3g}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    logger.info("wrote the report to %s", out)
    return out
