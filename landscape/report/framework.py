"""The report framework: sections of figures and tables, rendered into one self-contained HTML file.

A `Report` is a title and a list of `Section`s; a section is a title, an optional intro and a list
of items: plotly figures, `Table`s, and `HTML` (trusted markup made by report code, never by run
data). `Report.to_html()` renders ONE file that opens offline: plotly.js is inlined exactly once,
in the head, and every figure is rendered without it; there is no CDN, no MathJax, no web font and
no favicon request, so the page makes no network request at all.

Which sections a report holds depends on the kind of the runs in it. A module that knows a kind of
run registers a section builder for it:

    @section_for("imp")
    def imp_sections(runs: list[Run]) -> list[Section]:
        ...

`build_report(runs)` groups runs by kind (in order of first appearance) and calls every builder
registered for each kind with that kind's runs, so several runs of a kind share (overlay in) the
same figures. A kind with no builder registered yet is looked for, by convention, in
`landscape.report.<kind>` and then `landscape.<kind>.report` (importing the module registers its
builders); a kind that still has none gets a plain listing of its runs rather than an error.

Everything that comes from run data (names, config values, ...) is HTML-escaped: `Table` cells,
section titles and intros are escaped unless they are `HTML`; text that goes into plotly (trace
names, hover templates) goes through `plotly_text`.
"""
from __future__ import annotations

import html
import importlib
import importlib.metadata
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Protocol, Sequence, Union

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from ..errors import UserError
from .page import _CSS, _PAGE, write_report

__all__ = [
    "HTML", "Table", "Section", "Report", "Run", "SectionBuilder",
    "section_for", "builders_for", "build_report", "write_report",
    "escape", "plotly_text", "details", "landscape_version",
]


# --------------------------------------------------------------------------------------------
# What a report reads from a run (the store's read API, duck-typed)
# --------------------------------------------------------------------------------------------

class Run(Protocol):
    """The attributes a report reads from a run; `landscape.store` runs have them."""

    id: str
    name: str
    kind: str
    complete: bool
    config: dict
    environment: dict
    parent: str | None
    curves: dict[str, np.ndarray]
    metrics: dict[str, float]
    checkpoint_steps: list[int]


# --------------------------------------------------------------------------------------------
# Escaping
# --------------------------------------------------------------------------------------------

def escape(value: Any) -> str:
    """HTML-escape the text of any value (quotes included): for page markup."""
    return html.escape(str(value), quote=True)


def plotly_text(value: Any) -> str:
    """Text for plotly labels (trace names, titles, hover templates) shown literally.

    Plotly renders a subset of HTML tags in its labels and decodes `&lt; &gt; &amp;` and numeric
    entities, and a hover template substitutes `%{...}`. Escaping `& < >` and `%` makes a run
    named `<b>x</b>` or `%{y}` display as written. (Quotes need nothing: the figure's JSON is
    escaped by plotly, which also writes `<`, `>` and `/` as \\u escapes inside the script.)
    """
    text = str(value)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("%", "&#37;"))


# --------------------------------------------------------------------------------------------
# Items, sections, reports
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HTML:
    """Trusted markup, inserted as it is. Build it from constants and `escape()`d values only."""

    markup: str

    def __str__(self) -> str:
        return self.markup


def details(summary: str, text: str) -> HTML:
    """A collapsed block (`<details>`) showing `text` preformatted; both are escaped."""
    return HTML(f'<details class="raw"><summary>{escape(summary)}</summary>'
                f"<pre>{escape(text)}</pre></details>")


@dataclass
class Table:
    """A table of cells. Cells are escaped text (None and NaN show as an em dash) or `HTML`.

    `row_headers=True` renders the first column as row headers (a key/value table); `align`
    gives each column "left" or "right" (numbers read best right-aligned).
    """

    rows: list[Sequence[Any]]
    header: Sequence[str] | None = None
    caption: str | HTML | None = None
    row_headers: bool = False
    align: Sequence[str] | None = None

    def to_html(self) -> str:
        parts = ['<div class="table-wrap"><table>']
        if self.caption is not None:
            parts.append(f"<caption>{_text(self.caption)}</caption>")
        if self.header:
            cells = "".join(f'<th scope="col"{self._align(i)}>{_text(h)}</th>'
                            for i, h in enumerate(self.header))
            parts.append(f"<thead><tr>{cells}</tr></thead>")
        parts.append("<tbody>")
        for row in self.rows:
            cells = []
            for i, cell in enumerate(row):
                if i == 0 and self.row_headers:
                    cells.append(f'<th scope="row">{_cell(cell)}</th>')
                else:
                    cells.append(f"<td{self._align(i)}>{_cell(cell)}</td>")
            parts.append(f"<tr>{''.join(cells)}</tr>")
        parts.append("</tbody></table></div>")
        return "".join(parts)

    def _align(self, column: int) -> str:
        if self.align and column < len(self.align) and self.align[column] == "right":
            return ' class="num"'
        return ""


Item = Union[go.Figure, Table, HTML]


@dataclass
class Section:
    """A titled part of a report: an optional intro, then figures, tables and markup in order.

    `intro` is plain text (escaped; blank lines separate paragraphs) or `HTML`.
    """

    title: str
    intro: str | HTML | None = None
    items: list[Item] = field(default_factory=list)

    def figures(self) -> list[go.Figure]:
        return [item for item in self.items if isinstance(item, go.Figure)]


@dataclass
class Report:
    """A titled list of sections; `to_html()` renders the whole self-contained page."""

    title: str
    sections: list[Section] = field(default_factory=list)
    subtitle: str | None = None
    generated: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def figures(self) -> list[go.Figure]:
        return [fig for section in self.sections for fig in section.figures()]

    def to_html(self) -> str:
        anchors = _anchors([s.title for s in self.sections])
        generated = self.generated.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        meta = f"generated {escape(generated)} &middot; landscape {escape(landscape_version())}"
        toc = "".join(f'<li><a href="#{a}">{escape(s.title)}</a></li>'
                      for a, s in zip(anchors, self.sections))
        body: list[str] = []
        figure_number = 0
        for anchor, section in zip(anchors, self.sections):
            body.append(f'<section id="{anchor}"><h2>{escape(section.title)}</h2>')
            if section.intro is not None:
                body.append(_intro(section.intro))
            for item in section.items:
                if isinstance(item, go.Figure):
                    figure_number += 1
                    body.append(_figure_html(item, f"figure-{figure_number}"))
                elif isinstance(item, Table):
                    body.append(item.to_html())
                elif isinstance(item, HTML):
                    body.append(item.markup)
                else:
                    raise TypeError(f"a report section holds figures, Tables and HTML, "
                                    f"not {type(item).__name__}")
            body.append("</section>")
        if not self.sections:
            body.append('<p class="empty">Nothing to report.</p>')
        subtitle = (f'<p class="subtitle">{escape(self.subtitle)}</p>'
                    if self.subtitle else "")
        nav = (f'<nav class="toc" aria-label="Contents"><h2>Contents</h2><ol>{toc}</ol></nav>'
               if self.sections else "")
        return _PAGE.format(
            title=escape(self.title),
            css=_CSS,
            plotly_config="window.PlotlyConfig = {MathJaxConfig: 'local'};",
            plotlyjs=get_plotlyjs(),
            subtitle=subtitle,
            meta=meta,
            nav=nav,
            body="\n".join(body),
        )


def _text(value: str | HTML) -> str:
    return value.markup if isinstance(value, HTML) else escape(value)


def _cell(value: Any) -> str:
    if isinstance(value, HTML):
        return value.markup
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return '<span class="na">&mdash;</span>'
    return escape(value)


def _intro(intro: str | HTML) -> str:
    if isinstance(intro, HTML):
        return f'<div class="intro">{intro.markup}</div>'
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", intro) if p.strip()]
    return "".join(f'<p class="intro">{escape(p)}</p>' for p in paragraphs)


def _anchors(titles: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    anchors = []
    for title in titles:
        base = "s-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section")
        anchor, n = base, 2
        while anchor in seen:
            anchor, n = f"{base}-{n}", n + 1
        seen.add(anchor)
        anchors.append(anchor)
    return anchors


# Plotly's config for every figure: resize with the page, no plotly logo, no "edit in chart
# studio" link; the camera button saves a PNG (done in the browser, nothing is fetched).
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False,
                 "toImageButtonOptions": {"format": "png", "scale": 2}}


def _figure_html(fig: go.Figure, div_id: str) -> str:
    height = fig.layout.height or 440
    div = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False,
                      div_id=div_id, config=PLOTLY_CONFIG, default_width="100%",
                      default_height=f"{height}px", validate=True)
    return f'<div class="figure">{div}</div>'


def landscape_version() -> str:
    """The installed landscape version: `landscape.__version__`, else the package metadata."""
    try:
        import landscape
        version = getattr(landscape, "__version__", None)
        if version:
            return str(version)
    except ImportError:  # pragma: no cover - we are inside landscape
        pass
    try:
        return importlib.metadata.version("landscape")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------------------------
# Section builders, registered per run kind
# --------------------------------------------------------------------------------------------

SectionBuilder = Callable[[list[Run]], list[Section]]
_BUILDERS: dict[str, list[SectionBuilder]] = {}


def section_for(kind: str) -> Callable[[SectionBuilder], SectionBuilder]:
    """Register the decorated function as a section builder for runs of `kind`.

    The builder gets all of a report's runs of that kind (at least one) and returns sections.
    Several builders may register for one kind; they run in registration order. Registering a
    function again (a reloaded module) replaces the earlier registration instead of doubling it.
    """
    if not isinstance(kind, str) or not kind:
        raise TypeError("section_for needs a run kind, e.g. @section_for('train')")

    def register(builder: SectionBuilder) -> SectionBuilder:
        builders = _BUILDERS.setdefault(kind, [])
        builders[:] = [b for b in builders if _builder_key(b) != _builder_key(builder)]
        builders.append(builder)
        return builder

    return register


def _builder_key(builder: SectionBuilder) -> tuple:
    qualname = getattr(builder, "__qualname__", "")
    if not qualname or "<lambda>" in qualname:
        return ("id", id(builder))
    return (getattr(builder, "__module__", None), qualname)


def builders_for(kind: str) -> list[SectionBuilder]:
    """The builders registered for `kind`, importing the conventional module for it if needed."""
    if not _BUILDERS.get(kind) and kind.isidentifier():
        for module in (f"landscape.report.{kind}", f"landscape.{kind}.report"):
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                # Only "that module does not exist" is expected; a module that exists but fails
                # to import is a bug and propagates.
                if exc.name is None or not (module == exc.name
                                            or module.startswith(exc.name + ".")):
                    raise
            if _BUILDERS.get(kind):
                break
    return list(_BUILDERS.get(kind, []))


def build_report(runs: Iterable[Run], title: str | None = None) -> Report:
    """A report on `runs`: the sections of every builder registered for each kind of run.

    Runs are grouped by kind in order of first appearance (a run given twice, by id, counts
    once); each builder gets all the runs of its kind. `title` defaults to one naming the runs.
    Raises UserError when there are no runs.
    """
    runs = _unique(runs)
    if not runs:
        raise UserError("there are no runs to report on", "pass one or more run ids or names")
    by_kind: dict[str, list[Run]] = {}
    for run in runs:
        by_kind.setdefault(str(run.kind), []).append(run)
    sections: list[Section] = []
    for kind, kind_runs in by_kind.items():
        builders = builders_for(kind)
        if not builders:
            sections.append(_unknown_kind_section(kind, kind_runs))
            continue
        for builder in builders:
            built = builder(list(kind_runs))
            if not isinstance(built, (list, tuple)) or not all(
                    isinstance(s, Section) for s in built):
                raise TypeError(f"section builder {builder.__module__}.{builder.__qualname__} "
                                f"must return a list of Section, not {built!r:.80}")
            sections.extend(built)
    if title is None:
        title = _default_title(runs, by_kind)
    names = [run.name for run in runs[:6]]
    if len(runs) > 6:
        names[-1] = f"and {len(runs) - 5} more"
    subtitle = ", ".join(names)
    return Report(title=title, sections=sections, subtitle=subtitle)


def _unique(runs: Iterable[Run]) -> list[Run]:
    seen: set[str] = set()
    unique = []
    for run in runs:
        if run.id in seen:
            continue
        seen.add(run.id)
        unique.append(run)
    return unique


def _default_title(runs: list[Run], by_kind: dict[str, list[Run]]) -> str:
    if len(runs) == 1:
        kind = KIND_NAMES.get(runs[0].kind, runs[0].kind)
        return f"Report on {_article(kind)} {kind} run: {runs[0].name}"
    parts = [(f"{_article(KIND_NAMES.get(kind, kind))} {KIND_NAMES.get(kind, kind)} run" if len(group) == 1
              else f"{len(group)} {KIND_NAMES.get(kind, kind)} runs") for kind, group in by_kind.items()]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"Report on {len(runs)} runs: {listed}" if len(parts) > 1 else f"Report on {listed}"


# How a kind reads in a sentence ("an IMP run", "2 training runs").
KIND_NAMES = {"train": "training", "imp": "IMP", "lmc": "LMC", "instability": "instability", "scores": "scores",
              "diet": "data-diet"}


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" or word[:3] in ("IMP", "LMC") else "a"


def _unknown_kind_section(kind: str, runs: list[Run]) -> Section:
    rows = [[run.name, run.id, "complete" if run.complete else "interrupted"] for run in runs]
    return Section(
        title=f"Runs of kind {kind!r}",
        intro=(f"No report builder is registered for runs of kind {kind!r}, so they are only "
               "listed here."),
        items=[Table(rows=rows, header=["name", "id", "status"])],
    )
