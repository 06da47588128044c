"""What the dashboard (app/dashboard) reads: overview figures, task pages, the kept statistics report
and the GitHub sign-in."""
