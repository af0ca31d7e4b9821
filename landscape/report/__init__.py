"""Reports: one self-contained HTML file per report, built from runs read from the store.

    from landscape.report import build_report, write_report
    write_report(build_report(runs), "reports/lenet.html")

Modules that know a kind of run add sections with `@section_for("<kind>")`; see `framework`.
"""
from .framework import HTML, Report, Section, Table, build_report, section_for, write_report
from . import train  # noqa: F401  (registers the builder for kind "train")
from . import prune  # noqa: F401  (the method comparison for prune, imp and GMP train runs)

__all__ = ["Report", "Section", "Table", "HTML", "section_for", "build_report", "write_report"]
