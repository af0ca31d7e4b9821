"""Report sections for runs of kind "surface" live with the other geometry sections in
`landscape.report.geometry`; `build_report` looks for a kind's builders in `landscape.report.<kind>`,
so importing this module registers them."""
from .geometry import surface_sections  # noqa: F401  (registers the builder for kind "surface")
