#!/usr/bin/python3
"""Drives the daemon's web page in headless Chromium (tests/web_ui.rs runs this).

Usage: web_ui.py URL TORRENT_FILE SCREENSHOT SCRATCH_DIR

Opens the page, adds TORRENT_FILE through the page's upload field, waits until the page
shows the torrent at 100%, opens its files, unchecks and checks the first file (checking
the daemon's JSON API after each), adds a magnet link whose name is HTML through the form
(it must show as text), saves a screenshot, removes that torrent with its button (accepting
the confirmation), and exits 0. Any failure exits 1
with one line saying what did not happen.
"""

import json
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def api(url, path):
    # Straight to the daemon: no proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url.rstrip("/") + "/api/v1" + path, timeout=10) as reply:
        return json.loads(reply.read())


def main():
    url, torrent, screenshot, scratch = sys.argv[1:5]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", "--no-proxy-server", "--window-size=1200,700",
                "--user-data-dir=" + scratch + "/chromium-profile"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        wait = WebDriverWait(driver, 90, poll_frequency=0.2)
        driver.get(url)
        wait.until(lambda d: d.find_element(By.ID, "status").text == "live")
        print("page loaded, event stream live", flush=True)

        driver.find_element(By.ID, "torrent-file").send_keys(torrent)
        wait.until(lambda d: d.find_element(By.ID, "message").text.startswith("Added: "))
        print("added through the upload field:", driver.find_element(By.ID, "message").text,
              flush=True)

        # The list is redrawn every second: read it in one script, not element by element.
        def percent(d):
            value = d.execute_script(
                "const c = document.querySelector('tr.torrent td.progress');"
                "return c ? c.dataset.progress : null;")
            return float(value) if value is not None else -1.0

        seen = set()
        started = time.monotonic()
        def complete(d):
            p = percent(d)
            seen.add(round(p, 2))
            return p >= 1.0
        wait.until(complete)
        text = driver.execute_script(
            "return document.querySelector('tr.torrent .percent').textContent;")
        if text != "100.0%":
            raise SystemExit(f"the bar says {text!r} at completion")
        print(f"the page shows 100% after {time.monotonic() - started:.1f} s "
              f"(progress values seen: {sorted(seen)})", flush=True)

        tid = driver.execute_script(
            "const row = document.querySelector('tr.torrent');"
            "[...row.querySelectorAll('button')].find(b => b.textContent === 'Files').click();"
            "return row.dataset.id;")
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#file-rows input[type=checkbox]"))
        if not box.is_selected():
            raise SystemExit("the file's box is not checked at first")
        box.click()
        wait.until(lambda d: d.find_element(By.ID, "message").text == "File left out.")
        files = api(url, f"/torrents/{tid}/files")["files"]
        if files[0]["priority"] != 0:
            raise SystemExit(f"unchecking did not set priority 0: {files}")
        print("unchecked: priority 0", flush=True)
        box.click()
        wait.until(lambda d: d.find_element(By.ID, "message").text == "File selected.")
        files = api(url, f"/torrents/{tid}/files")["files"]
        if files[0]["priority"] != 4:
            raise SystemExit(f"checking did not set priority 4: {files}")
        print("checked again: priority 4", flush=True)

        # A magnet link through the form (nobody serves it), then removed with its button.
        field = driver.find_element(By.ID, "magnet")
        field.send_keys("magnet:?xt=urn:btih:" + "cd" * 20 + "&dn=<img src=x onerror=alert(1)>")
        driver.find_element(By.ID, "add-magnet").click()
        wait.until(lambda d: d.find_element(By.ID, "message").text.startswith("Added: <img"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.torrent")) == 2)
        names = driver.execute_script(
            "return [...document.querySelectorAll('tr.torrent td.name')].map(c => c.textContent);")
        if names[1] != "<img src=x onerror=alert(1)>":
            raise SystemExit(f"the magnet's name shows as {names[1]!r}")
        if driver.find_elements(By.CSS_SELECTOR, "td.name img"):
            raise SystemExit("a torrent name became HTML")
        print("magnet added through the form; its name shows as text", flush=True)
        driver.save_screenshot(screenshot)

        def remove_second(d):
            try:
                rows = d.find_elements(By.CSS_SELECTOR, "tr.torrent")
                rows[1].find_element(By.XPATH, ".//button[text()='Remove']").click()
                return True
            except (StaleElementReferenceException, IndexError):
                return False
        wait.until(remove_second)
        wait.until(lambda d: d.switch_to.alert).accept()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.torrent")) == 1)
        if len(api(url, "/torrents")["torrents"]) != 1:
            raise SystemExit("the daemon still has the magnet torrent")
        print("removed with the page's button", flush=True)
        print("screenshot:", screenshot, flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
