"""axe-core in the browser tests: every page is checked against WCAG 2.1 A and AA at a desktop
and a phone width, in every frame it shows (the checkout modal's iframe included).

axe-core comes from the ``axe-playwright-python`` dev dependency, which ships ``axe.min.js``;
we inject that file ourselves so that each frame is checked, not only the top document.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Frame, Page

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = {"desktop": (1280, 800), "phone": (375, 740)}
AXE_SOURCE = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
RUN = "options => axe.run(document, options)"


async def violations(frame: Frame) -> list[dict[str, Any]]:
    """The WCAG 2.1 A/AA violations axe finds in one frame's document."""
    if not await frame.evaluate("() => typeof axe !== 'undefined'"):
        await frame.evaluate(AXE_SOURCE)
    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
    result: dict[str, Any] = await frame.evaluate(RUN, options)
    found: list[dict[str, Any]] = result["violations"]
    return found


def describe(where: str, found: list[dict[str, Any]]) -> list[str]:
    """One line per failing element: the rule, what axe says, and the element."""
    return [
        f"{where}: {v['id']} ({v['impact']}): {v['help']} -> {node['target']} "
        f"{node.get('failureSummary', '')!r}"
        for v in found
        for node in v["nodes"]
    ]


async def assert_accessible(page: Page, name: str) -> None:
    """Fail with every violation of every frame, at 1280 px and at 375 px wide; the viewport
    is left as it was."""
    before = page.viewport_size
    problems: list[str] = []
    try:
        for label, (width, height) in WIDTHS.items():
            await page.set_viewport_size({"width": width, "height": height})
            for frame in page.frames:
                await frame.wait_for_load_state()
                where = f"{name} at {width}px ({label}) {frame.url}"
                problems += describe(where, await violations(frame))
    finally:
        if before is not None:
            await page.set_viewport_size(before)
    assert not problems, "WCAG 2.1 A/AA violations:\n" + "\n".join(problems)
