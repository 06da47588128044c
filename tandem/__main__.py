"""`python -m tandem`: the `tandem` command, for processes that must run the same interpreter."""

from cli.main import main

main()
