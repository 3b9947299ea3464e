"""Headless Chromium through selenium for the page tests: skipped locally without it, a failure in CI."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--window-size=1400,2400")


@contextmanager
def chromium(profile: Path) -> Iterator:
    """A selenium driver of Debian's headless Chromium, with its profile in `profile`."""
    from selenium import webdriver
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium/chromedriver not installed: apt-get install chromium chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def broken_images(driver) -> tuple[int, list[str]]:
    """How many images the page shows, and the sources of those that did not load."""
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);")
    return len(images), [src for src, complete, width in images if not complete or width == 0]
