"""index.html (one file, every image embedded as a data URI, so it opens from disk or as an email
attachment) and summary.md (for the README to link; images by relative path)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.files import write_text
from core.tables import markdown

from .figures import FigureFile

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222;
       padding: 0 1rem; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5rem 0 2.5rem; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; }
.notes li { color: #8a5a00; }
code { background: #f5f5f5; padding: 0 0.2rem; }
"""


@dataclass
class Page:
    title: str
    command: str
    sources: str
    tables: dict[str, pd.DataFrame]  # heading -> table
    figures: list[FigureFile]
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # data files beside the page


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def render_html(page: Page, root: Path) -> str:
    e = html.escape
    parts = [f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
             f"<title>{e(page.title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(page.title)}</h1>",
             f"<p>Made by <code>{e(page.command)}</code> from {e(page.sources)}.</p>"]
    if page.files:
        links = ", ".join(f"<a href='{e(f)}'>{e(f)}</a>" for f in page.files)
        parts.append(f"<p>Data: {links}.</p>")
    if page.notes:
        parts.append("<h2>Notes</h2><ul class='notes'>"
                     + "".join(f"<li>{e(n)}</li>" for n in page.notes) + "</ul>")
    if page.tables:
        parts.append("<h2>Results</h2>")
        for heading, table in page.tables.items():
            parts.append(f"<h3>{e(heading)}</h3>" + table.to_html(index=False, escape=True,
                                                                  border=0, na_rep="-"))
    if page.figures:
        parts.append("<h2>Figures</h2>")
    for figure in page.figures:
        parts.append(
            f"<figure id='{e(figure.name)}'><h3>{e(figure.title)}</h3>"
            f"<img src='{data_uri(figure.png)}' alt='{e(figure.title)}'>"
            f"<figcaption>{e(figure.caption)} Files: "
            f"<a href='{e(relative(figure.png, root))}'>PNG</a>, "
            f"<a href='{e(relative(figure.pdf, root))}'>PDF</a>.</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render_markdown(page: Page, root: Path) -> str:
    parts = [f"# {page.title}", "", f"Made by `{page.command}` from {page.sources}.",
             "Open `index.html` beside this file for the same report with every figure embedded.", ""]
    for note in page.notes:
        parts.append(f"- Note: {note}")
    if page.notes:
        parts.append("")
    for heading, table in page.tables.items():
        parts += [f"## {heading}", "", markdown(table, missing="-"), ""]
    for figure in page.figures:
        parts += [f"## {figure.title}", "", f"![{figure.title}]({relative(figure.png, root)})", "",
                  f"{figure.caption} ([PDF]({relative(figure.pdf, root)}))", ""]
    return "\n".join(parts)


def write_pages(page: Page, root: Path) -> tuple[Path, Path]:
    index, summary = root / "index.html", root / "summary.md"
    write_text(index, render_html(page, root))
    write_text(summary, render_markdown(page, root))
    return index, summary
