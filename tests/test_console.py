"""The web console in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) against a real ``ocptask serve`` running real installs on sandbox SSH hosts."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures import (
    CE_PACKAGE,
    PACKAGE,
    PACKAGE_DIR,
    install_request,
    register_ob_cluster,
    sample_request,
)
from fixtures import sandbox as sandbox_hosts
from tasks.obclusters.registry import ObClusters

from .conftest import ApiEnv, need_service

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module, flags as this machine's closed network needs."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        need_service("Debian's chromium and chromium-driver (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1600,1100",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    chromium.delete_all_cookies()
    yield chromium


@pytest.fixture
def site(api_hosts: tuple[ApiEnv, list[int], dict]) -> tuple[ApiEnv, list[int], dict]:
    register_ob_cluster(api_hosts[0].engine, "proxyro-Secret-4711")
    return api_hosts


def until(what: Callable[[], Any], timeout: float = 150, every: float = 0.3) -> Any:
    """``what()`` once it is truthy. An element the page re-rendered meanwhile (the console
    redraws as tasks move), or one not there yet while a submitted form's answer loads, counts
    as not yet: it is looked up again on the next try."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )

    deadline = time.monotonic() + timeout
    while True:
        try:
            found = what()
        except (StaleElementReferenceException, NoSuchElementException):
            found = None
        except WebDriverException as exc:  # Chromium's word for the same race, at times
            if "does not belong to the document" not in str(exc):
                raise
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(every)


def log_in(browser: Any, env: ApiEnv, path: str = "/tasks") -> None:
    from selenium.webdriver.common.by import By

    browser.get(env.url + path)
    assert "/login?next=" in browser.current_url  # no session: the page sends us to log in
    browser.find_element(By.ID, "username").send_keys(env.user)
    browser.find_element(By.ID, "password").send_keys(env.password)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    until(lambda: browser.current_url == env.url + path, 15)


def statuses(browser: Any) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll('#dag g.node')].map(n => n.dataset.status)"
    )


def test_create_from_the_form_and_watch_the_dag_turn_green(
    browser: Any, site: tuple[ApiEnv, list[int], dict]
) -> None:
    from selenium.webdriver.common.by import By

    env, _, _ = site
    log_in(browser, env, "/obproxy/new")
    browser.find_element(By.ID, "name").send_keys("console-cluster")
    for box in browser.find_elements(By.CSS_SELECTOR, 'input[name="hostIds"]'):
        box.click()
    # Every package of the directory is offered, both products; the community one is taken.
    offered = browser.execute_script(
        "return [...document.querySelectorAll('#packages option')].map(o => o.value)"
    )
    assert offered == sorted(p.name for p in PACKAGE_DIR.glob("*.rpm"))
    assert {PACKAGE, CE_PACKAGE} <= set(offered) and len(offered) == 4
    browser.find_element(By.ID, "version").send_keys(CE_PACKAGE)
    browser.find_element(By.ID, "startupParameters").send_keys("proxy_mem_limited=600M")
    browser.find_element(By.ID, "parameters").send_keys("slow_query_time_threshold=2s")
    browser.find_element(By.CSS_SELECTOR, "#create-cluster button[type=submit]").click()
    until(lambda: re.search(r"/tasks/\d+$", browser.current_url), 30)
    browser.execute_script("window.sameLoad = 'yes'")  # gone if the page were reloaded
    # Prepare obproxy install → OCP's 10-node chain on each of 3 hosts → Finish node.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#dag svg g.node")) == 32
    until(lambda: statuses(browser) == ["SUCCESSFUL"] * 32)
    assert browser.execute_script("return window.sameLoad") == "yes"
    assert browser.find_element(By.ID, "task-status").text == "SUCCESSFUL"
    fills = browser.execute_script(
        "return [...document.querySelectorAll('#dag g.node')]"
        ".map(n => n.querySelector('path, polygon').getAttribute('fill'))"
    )
    assert set(fills) == {"#a6e3a1"}
    assert not browser.find_element(By.ID, "task-rollback").is_displayed()
    title = browser.find_element(By.CSS_SELECTOR, "#dag svg g.graph > text").text
    assert title.endswith("(SUCCESSFUL)")
    # A node's details and log, for the picture too: host 2's "Start obproxy process".
    start = browser.find_elements(
        By.XPATH,
        "//*[local-name()='g'][contains(@aria-label, "
        "'Start obproxy process') and contains(@aria-label, 'sandbox-2')]",
    )
    start[0].click()
    log = until(lambda: browser.find_element(By.ID, "detail-log").text, 15)
    assert "obproxy" in log
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "console-task.png"))
    # The cluster's page shows its OBProxies, versions and parameters.
    browser.get(env.url + "/obproxy")
    browser.find_element(By.LINK_TEXT, "console-cluster").click()
    text = browser.find_element(By.TAG_NAME, "main").text
    assert text.count("RUNNING") == 3 and "proxy_mem_limited" in text and "600M" in text


def test_a_dead_host_turns_red_and_retry_brings_it_back(
    browser: Any, site: tuple[ApiEnv, list[int], dict]
) -> None:
    from selenium.webdriver.common.by import By

    env, ids, sandbox = site
    sandbox_hosts.stop_host(2, sandbox["state"])
    try:
        with env.client() as client:
            created = client.post("/api/v2/obproxy/clusters", json=install_request(ids))
            task_id = created.json()["data"]["id"]
        log_in(browser, env, f"/tasks/{task_id}")
        until(lambda: browser.find_element(By.ID, "task-status").text == "FAILED")
    finally:
        sandbox_hosts.start_host(2, sandbox["state"])
    failed = browser.find_elements(By.CSS_SELECTOR, '#dag g.node[data-status="FAILED"]')
    assert len(failed) == 1
    chains = browser.execute_script(
        "return [...document.querySelectorAll('#dag g.cluster')]"
        ".map(c => [c.querySelector('title').textContent, c.dataset.status])"
    )
    assert chains == [["cluster_0", ""], ["cluster_1", "FAILED"], ["cluster_2", ""]]
    label = failed[0].get_attribute("aria-label")
    assert label.startswith("Prepare create obproxy, FAILED") and "sandbox-2 (127.0.0.112)" in label
    failed[0].click()
    log = until(lambda: browser.find_element(By.ID, "detail-log").text, 15)
    assert "127.0.0.112" in log and "cannot connect" in log
    assert browser.find_element(By.ID, "detail-host").text == "sandbox-2 (127.0.0.112)"
    assert browser.find_element(By.ID, "task-rollback").is_displayed()  # FAILED: offered
    assert browser.find_element(By.ID, "sub-skip").is_displayed()
    browser.find_element(By.ID, "task-retry").click()
    until(lambda: browser.find_element(By.ID, "task-status").text == "SUCCESSFUL")
    until(lambda: statuses(browser) == ["SUCCESSFUL"] * 32, 30)
    assert not browser.find_element(By.ID, "task-rollback").is_displayed()
    assert not browser.find_element(By.ID, "task-retry").is_displayed()


def test_sessions_csrf_and_html_shown_as_text(browser: Any, api_env: ApiEnv) -> None:
    from selenium.webdriver.common.by import By

    url = api_env.url
    register_ob_cluster(api_env.engine, "proxyro-Secret-4711")
    with httpx.Client(base_url=url, follow_redirects=False) as anonymous:
        for page in ("/", "/tasks", "/tasks/1", "/obproxy", "/obproxy/new", "/hosts"):
            answer = anonymous.get(page)
            assert answer.status_code == 303 and "/login" in answer.headers["location"], page
        assert anonymous.get("/api/v2/tasks/instances").status_code == 401
        assert anonymous.post("/api/v2/obproxy/clusters", json={}).status_code == 401
        # A page's script reading in the background is told 401, not sent the login page.
        polled = anonymous.get("/tasks/1/state", headers={"X-Ocptask-Poll": "1"})
        assert polled.status_code == 401
        # Two login forms (two tabs) carry the same token: logging in from the first works.
        first, second = anonymous.get("/login").text, anonymous.get("/login").text
        assert _csrf_field(first) == _csrf_field(second)
    # A logged-in session, as a browser holds it: its cookie is not enough to change anything.
    with httpx.Client(base_url=url, follow_redirects=False) as session:
        token = _csrf_field(session.get("/login").text)
        wrong = {"username": api_env.user, "password": "not-it", "csrf": token}
        refused = session.post("/login", data=wrong)
        assert refused.headers["location"].endswith("&error=wrong")  # a code, never text
        assert "Wrong user name or password." in session.get(refused.headers["location"]).text
        forged = session.post("/login", data={**wrong, "csrf": "é-forged"})
        assert forged.status_code == 403 and "text/html" in forged.headers["content-type"]
        login = {"username": api_env.user, "password": api_env.password, "csrf": token}
        assert session.post("/login", data=login).status_code == 303
        missing = session.get("/tasks/abc")  # a page's error is a page, not OCP's envelope
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
        assert "default-src 'self'" in session.get("/tasks").headers["content-security-policy"]
        page = session.get("/tasks").text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        body = sample_request()
        assert session.post("/api/v2/obproxy/clusters", json=body).status_code == 403
        wrong = {"X-CSRF-Token": "x" + csrf}
        assert session.post("/api/v2/obproxy/clusters", json=body, headers=wrong).status_code == 403
        added = {"obClusterId": "7", "clusterName": "forged", "rsList": "1.2.3.4:2881",
                 "password": "pw-forged-1"}  # fmt: skip
        assert session.post("/obclusters", data=added).status_code == 403
        assert [c.id for c in ObClusters(api_env.engine).list()] == [1]
        # With the token, the same cookie may; HTML in a parameter value goes in as text.
        evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
        body["name"] = "html-cluster"
        body["parameters"] = [
            {"name": "xss_probe", "value": evil},
            {"name": "obproxy_sys_password", "value": "S3cret-xyz"},  # shown masked
        ]
        made = session.post("/api/v2/obproxy/clusters", json=body, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 200, made.text
        assert session.post("/logout", data={"csrf": csrf}).status_code == 303
        assert session.get("/tasks").status_code == 303  # the session is gone
    with api_env.client() as client:
        clusters = client.get("/api/v2/obproxy/clusters").json()["data"]["contents"]
    log_in(browser, api_env, f"/obproxy/{clusters[0]['id']}")
    cells = browser.find_elements(By.CSS_SELECTOR, "#parameters td")
    assert evil in [c.text for c in cells]
    rows = browser.execute_script(  # read whole, in one call
        "return [...document.querySelectorAll('#parameters tr')]"
        ".map(r => [...r.cells].map(c => c.textContent))"
    )
    assert ["obproxy_sys_password", "******", "runtime"] in rows
    assert "S3cret-xyz" not in browser.page_source
    assert browser.execute_script("return window.pwned") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "#parameters img, #parameters script")


def _csrf_field(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def test_the_add_forms(browser: Any, api_env: ApiEnv) -> None:
    """An OceanBase cluster added by its form is listed; hosts added by theirs start OCP's
    "Prepare host" task (batchCreate) and open it; a refusal is shown in the form, as text."""
    from selenium.webdriver.common.by import By

    api_env.engine.credentials.add("ops", "root", password="pw-ops-12345")
    log_in(browser, api_env, "/obclusters")

    def add(name: str) -> None:
        fields = {"obClusterId": "5", "clusterName": name, "rsList": "10.0.0.5:2881",
                  "password": "pw-five-1234"}  # fmt: skip
        for field, value in fields.items():
            browser.find_element(By.ID, field).send_keys(value)
        browser.find_element(By.CSS_SELECTOR, "main form button").click()

    add("<b>five</b>")  # refused: the page says why, in the form
    refused = until(lambda: browser.find_elements(By.CSS_SELECTOR, "form .error"), 15)
    assert "name: must be 1-64 letters" in refused[0].text
    assert not browser.find_elements(By.CSS_SELECTOR, "main b")
    add("five")
    until(lambda: "10.0.0.5:2881" in browser.find_element(By.TAG_NAME, "tbody").text, 15)
    assert [c.name for c in ObClusters(api_env.engine).list()] == ["five"]
    browser.get(api_env.url + "/hosts")
    browser.find_element(By.ID, "addresses").send_keys("not-an-address")
    browser.find_element(By.CSS_SELECTOR, "#add-hosts button").click()
    error = until(lambda: browser.find_element(By.ID, "form-errors").text, 15)
    assert "innerIpAddress" in error
    browser.find_element(By.ID, "addresses").clear()
    browser.find_element(By.ID, "addresses").send_keys("127.0.0.99 spare-host")
    browser.find_element(By.CSS_SELECTOR, "#add-hosts button").click()
    until(lambda: re.search(r"/tasks/\d+$", browser.current_url), 15)
    assert "Prepare host" in browser.find_element(By.ID, "task-title").text
    assert [h.name for h in api_env.engine.hosts.list()] == ["spare-host"]
    # Several hosts: a "Prepare host" task each, shown in the task list.
    browser.get(api_env.url + "/hosts")
    browser.find_element(By.ID, "addresses").send_keys("127.0.0.97\n127.0.0.98")
    browser.find_element(By.CSS_SELECTOR, "#add-hosts button").click()
    until(lambda: browser.current_url.endswith("/tasks"), 15)

    def counts() -> list[int]:
        rows = browser.find_elements(By.CSS_SELECTOR, "#task-rows tr")
        return [r.text.count("Prepare host") for r in rows]

    assert until(lambda: counts() == [1, 1, 1], 15)
    assert len(api_env.engine.hosts.list()) == 3


def test_a_page_of_200_tasks(browser: Any, api_env: ApiEnv) -> None:
    """Loads in the browser; the time is printed for the closing note, never asserted."""
    from selenium.webdriver.common.by import By

    from tests.helpers import chain

    for _ in range(200):
        api_env.engine.submit(chain("one", step="Noop"))
    log_in(browser, api_env, "/tasks?size=200")
    browser.get(api_env.url + "/tasks?size=200")
    rows = browser.find_elements(By.CSS_SELECTOR, "#task-rows tr")
    assert len(rows) == 200
    timing = browser.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return [n.responseEnd - n.requestStart, n.loadEventEnd - n.startTime]"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    figures = {"response_ms": round(timing[0], 1), "load_ms": round(timing[1], 1)}
    (ARTIFACTS / "tasks-200.json").write_text(json.dumps(figures) + "\n")
    print(f"200-task page: {figures}")
