"""The admin in a real browser: headless Chromium (Debian's chromium and chromium-driver,
installed by scripts/ensure_chromium.sh) driven by selenium against a live server.

A support user finds a wallet by provider account id, opens its events and its audit
trail, and cannot change anything; an admin deactivates it with a reason and the audit
record appears. With SAVE_SCREENSHOTS=1 the pages are saved into docs/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from audit.models import AuditRecord
from audit.services import Actor
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
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(5)
    driver.screenshots = tmp_path  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: WebDriver, name: str) -> None:
    path = driver.screenshots / f"{name}.png"
    assert driver.save_screenshot(str(path))
    if os.environ.get("SAVE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)


@pytest.fixture
def support_group() -> Group:
    """The group as the migration makes it. A transactional test before this one may have
    flushed the tables (data migrations included), so the migration's own code runs again."""
    migration = importlib.import_module("audit.migrations.0004_support_group")
    migration.create_support_group(django_apps, SimpleNamespace(connection=connection))
    return Group.objects.get(name=migration.GROUP)


@pytest.fixture
def wallet() -> Wallet:
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
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert driver.find_element(By.ID, "user-tools").text.upper().startswith("WELCOME")


def find_wallet(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/admin/wallets/wallet/")
    search = driver.find_element(By.ID, "searchbar")
    search.send_keys(ACCOUNT)
    search.submit()
    rows = driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
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
    browser, live_server, wallet, support_group
):
    support = get_user_model().objects.create_user("support", password=PASSWORD, is_staff=True)
    support.groups.add(support_group)
    base = live_server.url
    log_in(browser, base, "support")

    find_wallet(browser, base)
    # Support has no status permission: no deactivate action is offered.
    if has(browser, "select[name=action]"):
        options = [o.get_attribute("value") for o in Select(browser.find_element(By.NAME, "action")).options]
        assert "deactivate_wallets" not in options
        assert "reactivate_wallets" not in options
    shot(browser, "support-wallet-search")

    browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr th a").click()
    page = browser.find_element(By.ID, "content").text
    assert ACCOUNT in page and "customer_456" in page
    assert not has(browser, "input[name=_save]")
    assert not has(browser, "input[name=provider_account_id]")
    assert not has(browser, ".deletelink")
    shot(browser, "support-wallet-detail")
    detail_url = browser.current_url

    browser.find_element(By.LINK_TEXT, "This wallet's events").click()
    events = browser.find_element(By.ID, "result_list").text
    assert all(f"fincra_evt_{n}" in events for n in (1, 2, 3))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 3
    shot(browser, "support-wallet-events")

    browser.get(detail_url)
    browser.find_element(By.LINK_TEXT, "This wallet's audit records").click()
    audit = browser.find_element(By.ID, "result_list").text
    assert "register_wallet" in audit and "req-register-1" in audit
    shot(browser, "support-wallet-audit")

    # Nothing can be changed, whatever URL is typed.
    record = AuditRecord.objects.filter(resource_id=str(wallet.public_id)).first()
    for path in (
        "/admin/wallets/wallet/add/",
        f"/admin/wallets/wallet/{wallet.pk}/delete/",
        f"/admin/audit/auditrecord/{record.pk}/delete/",
        "/admin/audit/auditrecord/add/",
        "/admin/auth/user/",
    ):
        browser.get(base + path)
        # The admin answers with Django's own HTML 403 page (the API keeps its envelope).
        assert "403 Forbidden" in browser.page_source, path
    browser.get(f"{base}/admin/audit/auditrecord/{record.pk}/change/")
    assert not has(browser, "input[name=_save]")

    wallet.refresh_from_db()
    assert wallet.is_active
    assert AuditRecord.objects.filter(resource_id=str(wallet.public_id)).count() == 1


def test_admin_deactivates_a_wallet_with_a_reason_and_the_audit_record_appears(browser, live_server, wallet):
    get_user_model().objects.create_superuser("ops-admin", "ops@example.com", PASSWORD)
    base = live_server.url
    log_in(browser, base, "ops-admin")

    find_wallet(browser, base)
    browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("deactivate_wallets")
    browser.find_element(By.NAME, "index").click()

    assert "Why are these wallets being deactivated?" in browser.page_source
    browser.find_element(By.NAME, "reason").send_keys("Ticket SUP-1042: provider reported account closure")
    shot(browser, "admin-deactivate-reason")
    browser.find_element(By.NAME, "apply").click()
    assert "1 wallet(s) deactivated" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text

    wallet.refresh_from_db()
    assert not wallet.is_active
    record = AuditRecord.objects.get(resource_id=str(wallet.public_id), action="deactivate_wallet")
    assert record.actor_type == "staff" and record.actor_id == "ops-admin"
    assert record.details["reason"] == "Ticket SUP-1042: provider reported account closure"
    assert record.request_id  # the admin request's id

    browser.get(f"{base}/admin/wallets/wallet/{wallet.pk}/change/")
    browser.find_element(By.LINK_TEXT, "This wallet's audit records").click()
    audit = browser.find_element(By.ID, "result_list").text
    assert "deactivate_wallet" in audit and "ops-admin" in audit
    shot(browser, "admin-audit-after-deactivate")
