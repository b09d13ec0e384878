"""The catalogue tests run in the Beam venv (make test-catalogue); elsewhere they are not collected."""

import importlib.util

if importlib.util.find_spec("apache_beam") is None:
    collect_ignore_glob = ["test_*.py"]
