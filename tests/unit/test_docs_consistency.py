"""The docs cannot drift from the code: every error code the code can raise is in the Errors
section of docs/api.md (and gets an anchor there for its doc_url), every setting is in
docs/configuration.md, every CLI command is in docs/cli.md, docs/architecture.md's layout
table names exactly the packages and modules under src/paygrid, and the contents lists
link real sections."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import typer.main

from paygrid.cli import app as cli_app
from paygrid.config import Settings
from paygrid.web.docs import render_guide

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "paygrid"
DOCS = ROOT / "docs"


def _section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match is not None, f"no '## {heading}' section"
    return match.group(1)


def raised_codes() -> dict[str, set[str]]:
    """Every error code in src/paygrid, with where it comes from: error classes'
    ``default_code = "..."`` and ``code="..."`` given to any call (error constructors)."""
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), filename=where)):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    target, value = _assignment(statement)
                    if target == "default_code" and isinstance(value, ast.Constant):
                        found.setdefault(str(value.value), set()).add(f"{where}:{node.name}")
            elif isinstance(node, ast.Call):
                for keyword in node.keywords:
                    value = keyword.value
                    if (
                        keyword.arg == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        found.setdefault(value.value, set()).add(f"{where}:{node.lineno}")
    return found


def _assignment(statement: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), statement.value
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id, statement.value
    return None, None


def documented_codes() -> set[str]:
    """The codes in the third column of the tables in docs/api.md's Errors section."""
    errors = _section((DOCS / "api.md").read_text(), "Errors")
    rows = re.findall(r"^\|([^|\n]*)\|[^|\n]*\| `([a-z0-9_]+)` \|", errors, re.M)
    return {code for first, code in rows if first.strip() != "HTTP"}  # not the header


def test_the_collector_finds_codes_of_both_kinds() -> None:
    codes = raised_codes()
    assert "payment_invalid_state" in codes  # a class's default_code
    assert "api_key_missing" in codes  # code="..." at a raise
    assert "insufficient_permissions" in codes


def test_every_raised_error_code_is_documented() -> None:
    raised = raised_codes()
    details = {code: sorted(raised[code]) for code in sorted(raised.keys() - documented_codes())}
    assert not details, (
        f"error codes missing from the Errors section of docs/api.md (add a row): {details}"
    )


def test_every_documented_code_has_an_anchor_for_its_doc_url() -> None:
    html = render_guide("api")
    for code in documented_codes():
        assert f'<tr id="{code}">' in html, code


def test_api_contents_list_links_every_section() -> None:
    _contents_match("api.md")


def _contents_match(name: str) -> None:
    markdown = (DOCS / name).read_text()
    contents = markdown.split("\n## ", 1)[0]
    linked = set(re.findall(r"\]\(#([\w-]+)\)", contents))
    sections = {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^## (.+)$", markdown, re.M)
    }
    assert linked <= sections, f"contents of {name} link missing sections: {linked - sections}"
    assert sections <= linked, f"sections of {name} missing from its contents: {sections - linked}"


def test_every_setting_is_documented() -> None:
    configuration = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `(PAYGRID_[A-Z0-9_]+)` \|", configuration, re.M))
    settings = {f"PAYGRID_{name.upper()}" for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from docs/configuration.md"
    unknown = {name for name in documented - settings if not name.startswith("PAYGRID_TEST_")}
    assert unknown == set(), "docs/configuration.md documents settings that do not exist"


def test_every_cli_command_is_documented() -> None:
    cli = (DOCS / "cli.md").read_text()
    command = typer.main.get_command(cli_app)
    names = []
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        children = getattr(sub, "commands", None)
        names += (
            [f"paygrid {name} {child}" for child in children] if children else [f"paygrid {name}"]
        )
    missing = [name for name in names if f"`{name}" not in cli]
    assert not missing, f"commands missing from docs/cli.md: {missing}"


def _first_cell_names(table: str) -> set[str]:
    first_cells = re.findall(r"^\| ([^|]+) \|", table, re.M)
    return {name for cell in first_cells for name in re.findall(r"`([\w./]+)`", cell)}


def test_architecture_layout_matches_the_tree() -> None:
    layout = _section((DOCS / "architecture.md").read_text(), "Layout")
    named = _first_cell_names(layout.split("\n### ", 1)[0])  # the table of src/paygrid/
    packages = {
        f"{path.parent.name}/" for path in SRC.glob("*/__init__.py") if path.parent.name != "docs"
    }
    modules = {path.name for path in SRC.glob("*.py") if not path.name.startswith("__")}
    assert packages | modules, "found no packages"
    assert named - (packages | modules) == set(), "the layout names paths that do not exist"
    assert (packages | modules) - named == set(), "paths missing from the layout table"


def test_architecture_layout_tables_of_packages_match_the_tree() -> None:
    """services/, services/payments/ and db/ have a table each (``### services/`` ...),
    one row per module and subfolder."""
    layout = _section((DOCS / "architecture.md").read_text(), "Layout")
    tables = dict(re.findall(r"^### ([\w/]+/)\n(.*?)(?=^### |\Z)", layout, re.M | re.S))
    assert set(tables) == {"services/", "services/payments/", "db/"}
    for folder, table in tables.items():
        directory = SRC / folder
        present = {p.name for p in directory.glob("*.py") if not p.name.startswith("__")} | {
            f"{p.name}/" for p in directory.iterdir() if p.is_dir() and p.name != "__pycache__"
        }
        named = _first_cell_names(table)
        assert named - present == set(), f"{folder}: the table names paths that do not exist"
        assert present - named == set(), f"{folder}: paths missing from the table"


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#{1,6} (.+)$", text, re.M)
    }


def test_links_between_the_docs_resolve() -> None:
    """Moving text between README.md and docs/ must not leave a link dangling."""
    broken = []
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            file_part, _, anchor = target.partition("#")
            path = (page.parent / file_part).resolve() if file_part else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken
