"""Every template of the project keeps to the CSP (`script-src 'self'`): no inline script body,
no `on*=` event attribute, no `javascript:` URL. The browser would refuse them silently — a
dead Print button, a confirmation that never asks — so they are refused here, by reading the
templates, whatever page renders them."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
# The project's own templates: the shared folder and any app's templates/ folder.
TEMPLATES = sorted(
    {
        *ROOT.glob("templates/**/*.html"),
        *(p for p in ROOT.glob("*/templates/**/*.html") if ".venv" not in p.parts),
    }
)
# Template tags may sit inside attributes; they are blanked first so the HTML parser sees the
# markup a browser would (a `{% if %}` inside a tag is not an attribute).
_TEMPLATE_SYNTAX = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)


class _InlineScript(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.found.append(f"<{tag} {name}=…> (line {self.getpos()[0]})")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…> (line {self.getpos()[0]})")
        if tag == "script":
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline <script> body (line {self.getpos()[0]})")


def inline_script(text: str) -> list[str]:
    parser = _InlineScript()
    parser.feed(_TEMPLATE_SYNTAX.sub(" ", text))
    parser.close()
    return parser.found


def test_templates_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in TEMPLATES}
    assert "templates/base.html" in names
    assert len(names) >= 10


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_inline_script(path: Path) -> None:
    assert inline_script(path.read_text()) == []


@pytest.mark.parametrize(
    "markup",
    [
        '<button onclick="window.print()">Print</button>',
        "<button type=submit ONCLICK=\"return confirm('x')\">End</button>",
        "<script>alert(1)</script>",
        '<a href="javascript:void(0)">x</a>',
        "<form onsubmit=\"return confirm('{{ q }}')\"></form>",
    ],
)
def test_the_check_finds_inline_script(markup: str) -> None:
    assert inline_script(markup) != []


def test_the_check_allows_script_files_and_data_attributes() -> None:
    markup = (
        "<script src=\"{% static 'agencyops/agencyops.js' %}\" defer></script>"
        '<form data-confirm="End it?"><button type="button" data-print>Print</button></form>'
        '<p>Only "one" thing</p>'
    )
    assert inline_script(markup) == []


class _Tables(HTMLParser):
    """Each <table> and whether a <caption> opens right inside it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.missing: list[int] = []
        self._open: list[int] = []  # line of each table still waiting for its caption

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._open.append(self.getpos()[0])
        elif self._open and self._open[-1] > 0:
            if tag != "caption":
                self.missing.append(self._open[-1])
            self._open[-1] = 0  # answered: the first element inside decides

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._open:
            line = self._open.pop()
            if line > 0:
                self.missing.append(line)


def tables_without_caption(text: str) -> list[int]:
    parser = _Tables()
    parser.feed(_TEMPLATE_SYNTAX.sub(" ", text))
    parser.close()
    return parser.missing


# Dates and times are shown by `when` and `day` (one format, the viewer's zone, the zone
# named); a `|date:` of its own would bring back the mixed formats and the "UTC" written
# after a time that is not in UTC for the reader.
# A date or time printed bare falls back to Django's own format ("Jan. 1, 2026"). (The
# access chain's `broken_at` is an event number, not a time.)
_BARE_DATE = re.compile(r"{{\s*[\w.]+(?<!broken)_(?:on|at)\s*(?:\|\s*default:[^}|]*)?}}")
_OWN_DATE_FORMAT = re.compile(r"\|\s*date\s*:(?!\s*\"F Y\")")


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_tables_have_captions_and_dates_one_format(path: Path) -> None:
    text = path.read_text()
    assert tables_without_caption(text) == []
    assert _OWN_DATE_FORMAT.findall(text) == []
    assert _BARE_DATE.findall(text) == []
    # a progress bar says what it measures (axe checks the rendered pages; this, every branch)
    assert [tag for tag in re.findall(r"<progress[^>]*>", text) if "aria-label" not in tag] == []


def test_the_caption_check_finds_a_table_without_one() -> None:
    assert tables_without_caption("<table><thead><tr><th>a</th></tr></thead></table>") == [1]
    assert tables_without_caption("<table><caption>Runs</caption><tr><td>a</td></tr></table>") == []
