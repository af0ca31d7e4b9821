"""Report sections for instability analyses (kind "instability") live with the LMC sections in
`landscape.report.lmc`; `build_report` looks for a kind's builders in `landscape.report.<kind>`,
so importing this module registers them."""
from .lmc import instability_sections  # noqa: F401  (registers the builder for kind "instability")
