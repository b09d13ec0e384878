"""The request's query flags; light (no numpy), so main.py reads them before any decode."""

from __future__ import annotations

from collections.abc import Mapping

from postergenre.errors import CodedError

TRUE = ("1", "true", "yes", "on", "")  # "" = a bare ?explain
FALSE = ("0", "false", "no", "off")


def explain_requested(args: Mapping[str, str]) -> bool:
    """The ``explain`` query flag: 1/true/yes/on (or bare) asks, 0/false/no/off or absent does not."""
    value = args.get("explain")
    if value is None:
        return False
    value = value.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise CodedError("invalid_explain", "The explain parameter must be 1/true/yes or 0/false/no.", 400)
