"""The `landscape` command line (installed as the package `landscape.cli`)."""
