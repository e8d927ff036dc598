"""The Classify page in a real browser (headless Chromium): typing, the button, the model selector,
the shaded evidence (slow)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import STUDENT, TEACHER, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.mark.slow
def test_browser_classifies_a_comment(web: Any, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait
    from werkzeug.serving import make_server

    http = make_server("127.0.0.1", free_port(), web.server, threaded=True)
    serving = threading.Thread(target=http.serve_forever, daemon=True)
    serving.start()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(f"http://127.0.0.1:{http.server_port}/")
        # A callback's answer re-renders the result: an element found just before can be gone when read.
        wait = WebDriverWait(driver, 60, ignored_exceptions=(StaleElementReferenceException,))
        box = wait.until(expected_conditions.element_to_be_clickable((By.ID, "classify-text")))
        rule = wait.until(lambda d: d.find_element(By.ID, "classify-rule").text or None)
        assert "Non-toxic label: neither" in str(rule)
        box.send_keys("I hate you")
        box.send_keys(Keys.ENTER)
        verdict = wait.until(expected_conditions.visibility_of_element_located((By.ID, "classify-verdict")))
        assert verdict.text in {"Toxic", "Not toxic"}
        wait.until(
            expected_conditions.presence_of_element_located(
                (By.CSS_SELECTOR, "#classify-result .js-plotly-plot")
            )
        )
        assert f"model {TEACHER}" in driver.find_element(By.ID, "classify-details").text
        # The button and the model selector: the same text through the other model.
        Select(driver.find_element(By.ID, "classify-model")).select_by_value(STUDENT)
        driver.find_element(By.ID, "classify-submit").click()
        wait.until(
            expected_conditions.text_to_be_present_in_element((By.ID, "classify-details"), f"model {STUDENT}")
        )
        assert driver.find_element(By.ID, "classify-text").get_attribute("value") == "I hate you"

        def shaded_words(d: Any) -> list[str] | None:
            found = d.find_elements(By.CSS_SELECTOR, "#classify-evidence .evidence-word")
            return [word.text for word in found] or None

        assert wait.until(shaded_words) == ["I", "hate", "you"]
        # HTML and emoji come back as typed, one shaded word each (chromedriver types only BMP characters).
        text = "<b>so</b> stupid ☹ &amp; <script>x</script>"
        box.clear()
        box.send_keys(text)
        box.send_keys(Keys.ENTER)
        wait.until(lambda d: shaded_words(d) == text.split())
        evidence = driver.find_element(By.ID, "classify-evidence")
        assert evidence.text == text
        assert evidence.find_elements(By.CSS_SELECTOR, "b, script") == []
        words = evidence.find_elements(By.CSS_SELECTOR, ".evidence-word")
        assert all(w.get_attribute("title").startswith("P(toxic) ") for w in words)
        assert "pushes toward toxic" in driver.find_element(By.ID, "classify-evidence-legend").text
        time.sleep(1)  # let the chart finish drawing before the screenshot
        assert driver.save_screenshot(str(tmp_path / "classify.png"))
        assert (tmp_path / "classify.png").stat().st_size > 10_000
        # Without "Show why", no evidence.
        driver.find_element(By.CSS_SELECTOR, "label[for='classify-explain']").click()
        driver.find_element(By.ID, "classify-submit").click()
        wait.until(lambda d: not d.find_elements(By.ID, "classify-evidence"))
        assert driver.find_element(By.ID, "classify-verdict").text in {"Toxic", "Not toxic"}
    finally:
        driver.quit()
        http.shutdown()
        serving.join(timeout=10)
