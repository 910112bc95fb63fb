"""Reading pytest's own report in tests that run real pytest sessions."""

from __future__ import annotations

import re

import pytest


def section_of(result: pytest.RunResult, title: str) -> str:
    """The text of one failure/error section (``____ title ____``) of the report."""
    text = result.stdout.str()
    match = re.search(
        rf"_{{3,}} {re.escape(title)} _{{3,}}\n(.*?)(?=\n_{{3,}} |\n={{3,}} )", text, re.S
    )
    assert match, f"no section {title!r} in:\n{text}"
    return match.group(1)
