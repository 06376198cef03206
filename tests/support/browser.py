"""A real browser for the dashboard's tests: Debian's headless `chromium`, driven through
Debian's `chromium-driver` by Selenium (scripts/setup installs both). Screenshots go to the
test's own temporary directory (`screenshots/`), kept as its artifacts."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
T = TypeVar("T")


def browser_ready() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


# Skipped without chromium and its driver on a developer's machine; in CI, never skipped.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.environ.get("CI") and not browser_ready(),
                       reason="Debian's chromium and chromium-driver are not installed (run "
                       "scripts/setup as root)"),
]


@dataclass
class Browser:
    """One headless Chromium with its own profile; `shot` keeps a screenshot."""

    driver: webdriver.Chrome
    shots: Path
    taken: list[Path] = field(default_factory=list)

    def get(self, url: str) -> None:
        self.driver.get(url)

    @property
    def html(self) -> str:
        return str(self.driver.page_source)

    @property
    def path(self) -> str:
        url = str(self.driver.current_url)
        return "/" + url.split("://", 1)[1].partition("/")[2]

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def shot(self, name: str) -> Path:
        path = self.shots / f"{len(self.taken):02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        self.taken.append(path)
        return path

    def wait(self, probe: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
        """Poll `probe` until it returns something truthy; a screenshot and a failure after
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                self.shot("timeout")
                raise AssertionError(f"gave up after {timeout:g}s waiting for {what}; the "
                                     f"page ({self.driver.current_url}):\n{self.html[:4000]}")
            time.sleep(0.2)


def open_browser(tmp_path: Path, *, width: int = 1280, height: int = 900) -> Browser:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--window-size={width},{height}",
                     f"--user-data-dir={tmp_path / 'chromium-profile'}",
                     "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    # The ingress's certificates come from the test server's own CA.
    options.accept_insecure_certs = True
    shots = tmp_path / "screenshots"
    shots.mkdir(exist_ok=True)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return Browser(driver, shots)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A headless Chromium for this test; its last page is kept as a screenshot."""
    opened = open_browser(tmp_path)
    try:
        yield opened
    finally:
        try:
            opened.shot("last")
        finally:
            opened.driver.quit()
