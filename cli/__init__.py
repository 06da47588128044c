"""The `tandem` command line: an entry point beside app/ (HTTP) and workers/ (jobs)."""
