"""`python -m tandem`: the `tandem` command, for processes that must run the same interpreter."""

from tandem.cli import main

main()
