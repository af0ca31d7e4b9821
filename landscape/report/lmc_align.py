"""Report sections for runs of kind "lmc_align" live in `landscape.report.align`; `build_report` looks for a
kind's builders in `landscape.report.<kind>`, so importing this module registers them."""
from .align import lmc_align_sections  # noqa: F401
