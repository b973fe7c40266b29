"""The admin in a real browser: headless Chromium (Debian's chromium and chromium-driver,
installed by scripts/ensure_chromium.sh) driven by selenium against a live server.

A support user finds a wallet by provider account id, opens its events and its audit
trail, and cannot change anything; an admin deactivates it with a reason and the audit
record appears; support finds a wallet by a provider event id and reads its console
(balance, drift, timeline) and downloads its statement. With SAVE_SCREENSHOTS=1 the
pages are saved into docs/screenshots/.

Every step waits for what it then reads (selenium explicit waits on the element or text
asserted, a navigation waits for the old page to go stale), never for a length of time:
a busy machine makes the test slower, not red.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from amani.actors import Actor
from audit.models import AuditRecord
from audit.tests import support
from events.reconciliation import provider_balance_record
from events.services import event_ingest
from events.validation import EventInput
from wallets.models import Wallet
from wallets.services import wallet_register

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ACCOUNT = "fincra_wallet_123"
PASSWORD = "a-long-test-password-4242"
# How long a condition may take on a loaded machine before the test fails (it never sleeps this long).
PATIENCE = 30


@pytest.fixture
def browser(tmp_path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1600,1000",
    ):
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.implicitly_wait(5)
    driver.screenshots = tmp_path  # type: ignore[attr-defined]
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver) -> WebDriverWait:
    return WebDriverWait(driver, PATIENCE)


def navigate(driver: WebDriver, element: WebElement) -> None:
    """Click something that loads a new page, and wait until the new page has replaced the old one."""
    old_page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    wait(driver).until(EC.staleness_of(old_page))
    wait(driver).until(lambda d: d.execute_script("return document.readyState") == "complete")


def text_of(driver: WebDriver, selector: str, expected: str) -> str:
    """The text of `selector` once it contains `expected` (the assertion's own condition)."""
    wait(driver).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, selector), expected))
    return driver.find_element(By.CSS_SELECTOR, selector).text


def shot(driver: WebDriver, name: str, *, full_page: bool = False) -> None:
    path = driver.screenshots / f"{name}.png"
    if full_page:  # the whole console, not just the first screen
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1600, min(height + 40, 6000))
    assert driver.save_screenshot(str(path))
    if full_page:
        driver.set_window_size(1600, 1000)
    if os.environ.get("SAVE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)


@pytest.fixture
def support_group() -> Group:
    """The group as the migrations make it. A transactional test before this one may have
    flushed the tables (data migrations included), so the migrations' own code runs again."""
    return support.support_group()


@pytest.fixture
def registered_wallet() -> Wallet:
    registration = wallet_register(
        user_id=uuid.UUID("7d1f2c3a-9b8e-4f6d-a5c4-3b2a1f0e9d8c"),
        provider="fincra",
        provider_account_id=ACCOUNT,
        provider_customer_id="customer_456",
        metadata={"kyc_verified": True},
        actor=Actor.api_key("ak_demo", "req-register-1"),
    )
    for n, (event_type, amount) in enumerate([("deposit", "1500.00"), ("hold", "200.00"), ("fee", "25.50")], 1):
        item = EventInput(
            event_type=event_type,
            amount=Decimal(amount),
            currency="NGN",
            occurred_at=dt.datetime(2026, 11, 20, 14, n, tzinfo=dt.UTC),
            provider_event_id=f"fincra_evt_{n}",
        )
        event_ingest(
            wallet_id=registration.wallet.public_id, item=item, actor=Actor.api_key("ak_demo", f"req-event-{n}")
        )
    # Other wallets, so finding the right one means something.
    for n in range(3):
        wallet_register(
            user_id=uuid.uuid4(), provider="paystack", provider_account_id=f"paystack_{n}", actor=Actor.system()
        )
    return registration.wallet


def log_in(driver: WebDriver, base: str, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/admin/login/?next=/admin/")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    navigate(driver, driver.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    assert text_of(driver, "#user-tools", "WELCOME").upper().startswith("WELCOME")


def search_wallets(driver: WebDriver, base: str, term: str) -> None:
    """The wallet list's one search box; one match lands on the wallet's console."""
    driver.get(f"{base}/admin/wallets/wallet/")
    search = driver.find_element(By.ID, "searchbar")
    search.send_keys(term)
    navigate(driver, driver.find_element(By.CSS_SELECTOR, "#changelist-search input[type=submit]"))


def list_fincra_wallets(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/admin/wallets/wallet/?provider=fincra")
    rows = wait(driver).until(EC.presence_of_all_elements_located((By.CSS_SELECTOR, "#result_list tbody tr")))
    assert len(rows) == 1
    assert ACCOUNT in rows[0].text


def has(driver: WebDriver, selector: str) -> bool:
    driver.implicitly_wait(0)
    try:
        driver.find_element(By.CSS_SELECTOR, selector)
        return True
    except NoSuchElementException:
        return False
    finally:
        driver.implicitly_wait(5)


def test_support_finds_a_wallet_reads_its_events_and_audit_and_cannot_change_anything(
    browser, live_server, registered_wallet, support_group
):
    support = get_user_model().objects.create_user("support", password=PASSWORD, is_staff=True)
    support.groups.add(support_group)
    base = live_server.url
    log_in(browser, base, "support")

    # Support has no status permission: no deactivate action is offered on the list.
    list_fincra_wallets(browser, base)
    if has(browser, "select[name=action]"):
        options = [o.get_attribute("value") for o in Select(browser.find_element(By.NAME, "action")).options]
        assert "deactivate_wallets" not in options
        assert "reactivate_wallets" not in options
    shot(browser, "support-wallet-search")

    search_wallets(browser, base, ACCOUNT)  # one match: the wallet's console
    page = text_of(browser, "#content", "customer_456")
    assert ACCOUNT in page
    assert not has(browser, "input[name=_save]")
    assert not has(browser, "input[name=provider_account_id]")
    assert not has(browser, ".deletelink")
    assert not has(browser, "#console-status")  # nor on the console
    shot(browser, "support-wallet-detail")
    detail_url = browser.current_url

    navigate(browser, browser.find_element(By.LINK_TEXT, "This wallet's events"))
    events = text_of(browser, "#result_list", "fincra_evt_1")
    assert all(f"fincra_evt_{n}" in events for n in (1, 2, 3))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 3
    shot(browser, "support-wallet-events")

    browser.get(detail_url)
    navigate(browser, browser.find_element(By.LINK_TEXT, "This wallet's audit records"))
    audit = text_of(browser, "#result_list", "register_wallet")
    assert "req-register-1" in audit
    shot(browser, "support-wallet-audit")

    # Nothing can be changed, whatever URL is typed.
    record = AuditRecord.objects.filter(resource_id=str(registered_wallet.public_id)).first()
    for path in (
        "/admin/wallets/wallet/add/",
        f"/admin/wallets/wallet/{registered_wallet.pk}/delete/",
        f"/admin/audit/auditrecord/{record.pk}/delete/",
        "/admin/audit/auditrecord/add/",
        "/admin/auth/user/",
    ):
        browser.get(base + path)
        # The admin answers with Django's own HTML 403 page (the API keeps its envelope).
        assert "403 Forbidden" in text_of(browser, "body", "403 Forbidden"), path
    browser.get(f"{base}/admin/audit/auditrecord/{record.pk}/change/")
    wait(browser).until(EC.presence_of_element_located((By.ID, "content")))
    assert not has(browser, "input[name=_save]")

    registered_wallet.refresh_from_db()
    assert registered_wallet.is_active
    assert AuditRecord.objects.filter(resource_id=str(registered_wallet.public_id)).count() == 1


def test_admin_deactivates_a_wallet_with_a_reason_and_the_audit_record_appears(browser, live_server, registered_wallet):
    get_user_model().objects.create_superuser("ops-admin", "ops@example.com", PASSWORD)
    base = live_server.url
    log_in(browser, base, "ops-admin")

    list_fincra_wallets(browser, base)
    browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr input.action-select").click()
    wait(browser).until(EC.element_located_to_be_selected((By.CSS_SELECTOR, "#result_list input.action-select")))
    Select(browser.find_element(By.NAME, "action")).select_by_value("deactivate_wallets")
    navigate(browser, browser.find_element(By.NAME, "index"))

    # Wait for the reason form itself (it was once read before it had loaded).
    assert "Why are these wallets being deactivated?" in text_of(browser, "#content", "Why are these wallets")
    reason = wait(browser).until(EC.element_to_be_clickable((By.NAME, "reason")))
    reason.send_keys("Ticket SUP-1042: provider reported account closure")
    shot(browser, "admin-deactivate-reason")
    navigate(browser, browser.find_element(By.NAME, "apply"))
    assert "1 wallet(s) deactivated" in text_of(browser, "ul.messagelist", "1 wallet(s) deactivated")

    registered_wallet.refresh_from_db()
    assert not registered_wallet.is_active
    record = AuditRecord.objects.get(resource_id=str(registered_wallet.public_id), action="deactivate_wallet")
    assert record.actor_type == "staff" and record.actor_id == "ops-admin"
    assert record.details["reason"] == "Ticket SUP-1042: provider reported account closure"
    assert record.request_id  # the admin request's id

    browser.get(f"{base}/admin/wallets/wallet/{registered_wallet.pk}/change/")
    # The console's timeline answers "who deactivated this wallet" on the wallet's own page.
    timeline = text_of(browser, "#timeline", "deactivate_wallet")
    assert "ops-admin" in timeline and "SUP-1042" in timeline
    assert "deactivated" in browser.find_element(By.ID, "console-identity").text
    navigate(browser, browser.find_element(By.LINK_TEXT, "This wallet's audit records"))
    audit = text_of(browser, "#result_list", "deactivate_wallet")
    assert "ops-admin" in audit
    shot(browser, "admin-audit-after-deactivate")


def test_support_finds_a_wallet_by_provider_event_id_reads_its_console_and_downloads_the_statement(
    browser, live_server, registered_wallet, support_group
):
    # The provider says 1300.00 is available; the events say 1274.50: a drift of 25.50.
    provider_balance_record(
        wallet=registered_wallet,
        currency="NGN",
        available=Decimal("1300.00"),
        reported_at=dt.datetime(2026, 11, 20, 15, tzinfo=dt.UTC),
        actor=Actor.api_key("ak_demo", "req-report-1"),
    )
    support = get_user_model().objects.create_user("support", password=PASSWORD, is_staff=True)
    support.groups.add(support_group)
    base = live_server.url
    log_in(browser, base, "support")

    search_wallets(browser, base, "fincra_evt_2")  # a provider event id, pasted from a ticket
    assert browser.current_url.endswith(f"/admin/wallets/wallet/{registered_wallet.pk}/change/")
    balance = text_of(browser, "#console-balances tr.balance[data-currency=NGN]", "1274.50")
    assert balance.split() == ["NGN", "1474.50", "200.00", "1274.50", "3", "2026-11-20", "14:03:00"]
    drift = browser.find_element(By.CSS_SELECTOR, "#console-reconciliation tr.reconciliation.drift")
    assert "drift" in drift.text and "25.50" in drift.text
    colour = drift.find_element(By.CSS_SELECTOR, "td.amount.drift").value_of_css_property("color")
    assert colour in ("rgba(186, 33, 33, 1)", "rgb(186, 33, 33)")
    rows = browser.find_elements(By.CSS_SELECTOR, "#timeline tr.timeline-row")
    assert [row.get_attribute("class").split()[-1] for row in rows] == [
        "kind-audit",
        "kind-report",
        "kind-event",
        "kind-event",
        "kind-event",
    ]
    assert "25.50" in rows[2].text and "fee" in rows[2].text
    shot(browser, "support-console", full_page=True)

    # Only the events, and the chart over November with the report marked.
    Select(browser.find_element(By.ID, "id_kind")).select_by_value("event")
    # A date input's typing order follows the browser's locale: set the value as the form submits it.
    for field, value in (("id_chart_from", "2026-11-01"), ("id_chart_to", "2026-11-30")):
        browser.execute_script("arguments[0].value = arguments[1]", browser.find_element(By.ID, field), value)
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "#console-timeline input[type=submit]"))
    assert "kind=event" in browser.current_url and "chart_from=2026-11-01" in browser.current_url
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#timeline tr.timeline-row")) == 3)
    assert browser.find_elements(By.CSS_SELECTOR, "svg.balance-chart[data-currency=NGN] circle.report-mark.drift")
    browser.execute_script("document.getElementById('console-chart').scrollIntoView()")
    shot(browser, "support-console-chart")

    # The statement for November as CSV.
    Select(browser.find_element(By.ID, "statement-currency")).select_by_value("NGN")
    browser.find_element(By.CSS_SELECTOR, "#statement-form input[type=submit]").click()
    expected = browser.downloads / f"statement-{registered_wallet.public_id}-NGN.csv"
    wait(browser).until(lambda d: expected.is_file() and not list(browser.downloads.glob("*.crdownload")))
    lines = expected.read_text().splitlines()
    assert lines[1].split(",")[2] == "opening"
    assert [line.split(",")[2] for line in lines[2:-1]] == ["deposit", "hold", "fee"]
    assert lines[-1].split(",")[-3:] == ["1474.50", "200.00", "1274.50"]
