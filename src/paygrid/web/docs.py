"""The documentation a running server serves, with no request leaving the machine: Swagger UI
at ``/docs`` and ReDoc at ``/redoc`` (their scripts and styles come from the installed
``fastapi-offline`` package, never a CDN), and the guides in ``docs/*.md`` rendered at
``/docs/<name>`` (``/docs/api`` is the integration guide every error's ``doc_url`` points at).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from markdown_it import MarkdownIt
from markdown_it.token import Token

from paygrid.domain.errors import ResourceMissing

router = APIRouter(include_in_schema=False)

ASSETS_DIR: Final = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PREFIX: Final = "/docs/assets/"
ASSETS: Final[dict[str, str]] = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
# Swagger UI's default would load a validity badge from validator.swagger.io.
SWAGGER_PARAMETERS: Final = {"validatorUrl": None}
# The wheel carries docs/ inside the package; a checkout (editable install) has it at the root.
DOCS_DIRS: Final = (Path(__file__).parents[1] / "docs", Path(__file__).parents[3] / "docs")
ERRORS_HEADING: Final = "Errors"


def docs_dir() -> Path:
    return next((path for path in DOCS_DIRS if path.is_dir()), DOCS_DIRS[-1])


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="paygrid API reference",
        swagger_js_url=f"{ASSETS_PREFIX}swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PREFIX}swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PREFIX}favicon.png",
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="paygrid API reference",
        redoc_js_url=f"{ASSETS_PREFIX}redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_PREFIX}favicon.png",
        with_google_fonts=False,
    )


@router.get(ASSETS_PREFIX + "{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise ResourceMissing(f"No such documentation asset: '{name}'.")
    return FileResponse(
        ASSETS_DIR / name, media_type=ASSETS[name], headers={"Cache-Control": "max-age=86400"}
    )


@router.get("/docs/{name:path}")
async def guide(name: str) -> HTMLResponse:
    """A guide from ``docs/``, rendered to HTML (``/docs/api``, ``/docs/providers/stripe``)."""
    pages = guide_names()
    if name not in pages:
        raise ResourceMissing(f"No such guide: '{name}'.")
    return HTMLResponse(render_guide(name))


@cache
def guide_names() -> frozenset[str]:
    root = docs_dir()
    return frozenset(str(path.relative_to(root).with_suffix("")) for path in root.rglob("*.md"))


@cache
def render_guide(name: str) -> str:
    source = (docs_dir() / f"{name}.md").read_text()
    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = markdown.parse(source)
    title = _anchor(tokens)
    body = markdown.renderer.render(tokens, markdown.options, {})
    return PAGE.format(title=title, body=body)


def _anchor(tokens: list[Token]) -> str:
    """Give headings GitHub's ids (so links between the guides work here too), each row of
    the Errors table the id of its code (``#payment_invalid_state``), and turn links to
    ``other.md`` into ``other``. Returns the first heading's text, for the title."""
    title, seen, in_errors, in_head = "paygrid", set[str](), False, False
    for index, token in enumerate(tokens):
        in_head = {"thead_open": True, "thead_close": False}.get(token.type, in_head)
        if token.type == "heading_open":
            text = tokens[index + 1].content
            slug = _unique(_slug(text), seen)
            token.attrSet("id", slug)
            title = text if title == "paygrid" else title
            if token.tag == "h2":
                in_errors = text == ERRORS_HEADING
        elif token.type == "tr_open" and in_errors and not in_head:
            code = _row_code(tokens, index)
            if code is not None and code not in seen:
                seen.add(code)
                token.attrSet("id", code)
        for child in token.children or ():
            href = child.attrGet("href") if child.type == "link_open" else None
            if isinstance(href, str) and "://" not in href:
                child.attrSet(
                    "href", re.sub(r"^((?:\.\./|[\w-]+/)*[\w-]+)\.md(?=#|$)", r"\1", href)
                )
    return title


def _row_code(tokens: list[Token], start: int) -> str | None:
    """The code in the third cell of the table row starting at ``start`` (HTTP, type, code)."""
    cells = 0
    for token in tokens[start:]:
        if token.type == "tr_close":
            return None
        if token.type == "inline":
            cells += 1
            if cells == 3:
                match = re.fullmatch(r"`([a-z0-9_]+)`", token.content.strip())
                return match.group(1) if match else None
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _unique(slug: str, seen: set[str]) -> str:
    candidate, number = slug, 0
    while candidate in seen:
        number += 1
        candidate = f"{slug}-{number}"
    seen.add(candidate)
    return candidate


PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · paygrid</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 0 auto;
  padding: 1rem 1.5rem 4rem; color: #1a1a2e; }}
code, pre {{ font: 0.9em ui-monospace, monospace; background: #f3f3f7; }}
pre {{ padding: 0.75rem; overflow-x: auto; }}
table {{ border-collapse: collapse; display: block; overflow-x: auto; }}
th, td {{ border: 1px solid #d8d8e0; padding: 0.3rem 0.5rem; vertical-align: top; }}
tr:target {{ background: #fff4c2; }}
a {{ color: #2846b8; }}
nav {{ margin-bottom: 1rem; }}
</style></head>
<body><nav><a href="/">paygrid</a> · <a href="/docs/api">API guide</a> ·
<a href="/docs">API reference</a></nav>
<main>
{body}
</main></body></html>
"""
