"""The layout every page shares: light and dark, the theme switch, and a narrow screen."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.ui.conftest import Ui

pytestmark = pytest.mark.timeout(120)


def _background(page: Page) -> str:
    color: str = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return color


def _is_dark(color: str) -> bool:
    red, green, blue = (int(part) for part in color[color.index("(") + 1 : -1].split(",")[:3])
    return (red + green + blue) / 3 < 80


def test_the_system_scheme_picks_light_or_dark_and_the_switch_overrides_it(
    ui: Ui, browser: Any
) -> None:
    for scheme, dark in (("light", False), ("dark", True)):
        context = browser.new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(f"{ui.url}/flow-runs")
        assert _is_dark(_background(page)) is dark, scheme
        context.close()

    context = browser.new_context(color_scheme="light")
    page = context.new_page()
    page.goto(f"{ui.url}/")
    switch = page.get_by_role("button", name="Theme")
    switch.click()  # system -> dark
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert _is_dark(_background(page))
    page.goto(f"{ui.url}/variables")  # remembered on the next page
    assert _is_dark(_background(page))
    switch = page.get_by_role("button", name="Theme")
    switch.click()  # dark -> light
    assert not _is_dark(_background(page))
    context.close()


def test_on_a_narrow_screen_the_menu_folds_into_a_button(ui: Ui, page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{ui.url}/")
    nav = page.locator("nav#nav")
    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Deployments").click()
    expect(page).to_have_url(f"{ui.url}/deployments")
    # Nothing sticks out sideways but what scrolls inside its own box (wide tables).
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
