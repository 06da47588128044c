"""A local GitHub sandbox: GitHub's REST API, git and webhooks on loopback (``github/``), with
Tandem registered, installed and running against it (``tandem sandbox``), raters' actions from the
command line (``control.py``) and a scripted walk-through (``tandem demo``)."""
