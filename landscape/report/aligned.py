"""Report sections for runs of kind "aligned" live in `landscape.report.align`; `build_report` looks for a
kind's builders in `landscape.report.<kind>`, so importing this module registers them."""
from .align import aligned_sections  # noqa: F401
