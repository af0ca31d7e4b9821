"""Report sections for runs of kind "instability_align" live in `landscape.report.align`; `build_report` looks for a
kind's builders in `landscape.report.<kind>`, so importing this module registers them."""
from .align import instability_align_sections  # noqa: F401
