"""Browser desks: the example web desk (examples/web-desk) receives a dossier from headless
Chromium over grpc-web, with no proxy, and the dossier is then in the log.

The page is served from an origin of its own (a port of its own), listed in the server's
`[web] allowed_origins`, so CORS is really exercised; the same page from an origin not listed
is stopped by the browser before anything reaches the log. Chromium is Debian's
(/usr/bin/chromium), driven by Playwright (tests/python/requirements.txt), which downloads no
browser of its own. The checked-in bundle is rebuilt from proto/ with the lockfile's packages
and must be byte-for-byte the same. HOSO_WEB_DESK_SCREENSHOT=FILE.png saves the page showing
the dossier it received, to look at.
"""

import filecmp
import functools
import http.client
import http.server
import json
import os
import shutil
import signal
import struct
import subprocess
import threading
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, _first_line, _hoso_bin, _read_tokens

EXAMPLE = ROOT / "examples" / "web-desk"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: How long the page may take to show an answer, in milliseconds (a bound, not a measurement).
PAGE_TIMEOUT_MS = 30_000


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page_origin():
    """examples/web-desk served over HTTP on a port of its own; its origin."""
    handler = functools.partial(_Quiet, directory=str(EXAMPLE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory, page_origin):
    """A server whose browser desks are on for the page's origin, with the sample catalogue
    loaded; (address, tokens)."""
    binary = str(_hoso_bin())
    work = tmp_path_factory.mktemp("web-desk")
    (work / "hoso.toml").write_text(f'[web]\nallowed_origins = ["{page_origin}"]\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "HOSO_CONFIG"}
    env["HOSO_LOG"] = "warn"
    process = subprocess.Popen(
        [binary, "serve", "--config", "hoso.toml", "--listen", "127.0.0.1:0", "--data-dir", "data"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        line = _first_line(process)
        assert line.startswith("hoso: serving on "), line
        threading.Thread(target=process.stdout.read, daemon=True).start()
        addr = line.split()[-1]
        tokens = _read_tokens(work / "data")
        loaded = subprocess.run(
            [binary, "catalogue", "load", str(ROOT / "docs" / "catalogue-sample.csv"),
             "--decision", "1234/QĐ-UBND", "--effective", "2026-01-01"],
            env=dict(env, HOSO_SERVER=f"http://{addr}", HOSO_TOKEN=tokens["operator"]),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        yield addr, tokens
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), (
        "/usr/bin/chromium is missing: install the Debian package chromium (cargo xtask test does as root)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def open_desk(browser, origin, addr):
    """The desk page from `origin`, pointed at the server, with its script loaded."""
    page = browser.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(f"{origin}/index.html?server=http://{addr}")
    page.wait_for_selector("body[data-ready=true]")
    return page


def receive(page, token, procedure="1.001234"):
    """Fills the form as an officer would and clicks Receive; the receipt code the page made."""
    page.fill("#token", token)
    page.fill("#procedure", procedure)
    page.select_option("#channel", label="Online")
    page.click("#send")
    return page.input_value("#receiptCode")


def wait_for_the_dossier(page):
    """Waits for the page's answer, and fails with the page's error when it shows one."""
    page.wait_for_selector("#dossier:not([hidden]), #failure:not([hidden])")
    assert page.is_hidden("#failure"), page.text_content("#failure")


def get_dossier(pb, addr, token, code):
    """The dossier by receipt code through the normal gRPC client, or the gRPC error."""
    import grpc

    with grpc.insecure_channel(addr) as channel:
        stub = pb.dossier_grpc.DossierQueryServiceStub(channel)
        try:
            return stub.GetDossier(
                pb.dossier.GetDossierRequest(dossier=pb.dossier.DossierRef(receipt_code=code)),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=30,
            )
        except grpc.RpcError as err:
            return err


def test_the_page_receives_a_dossier_and_it_is_then_in_the_log(pb, web_server, page_origin, browser):
    import grpc

    addr, tokens = web_server
    page = open_desk(browser, page_origin, addr)
    with page.expect_response(lambda r: r.url.endswith("/hoso.v1.DeskService/ReceiveDossier")) as answer:
        code = receive(page, tokens["desk_officer"])
    response = answer.value
    # The page spoke grpc-web to the server itself, across origins, with no proxy.
    assert response.url == f"http://{addr}/hoso.v1.DeskService/ReceiveDossier"
    assert response.request.headers["content-type"].startswith("application/grpc-web")
    assert response.headers["access-control-allow-origin"] == page_origin
    wait_for_the_dossier(page)
    assert page.text_content("#status") == "Received."
    assert page.text_content("#shown-receipt-code") == code
    dossier_id = page.text_content("#shown-dossier-id")
    assert str(uuid.UUID(dossier_id)) == dossier_id
    assert page.text_content("#shown-handling-agency") == "000.00.04.G18", "the catalogue's agency"
    assert page.text_content("#shown-channel") == "ONLINE"
    assert page.text_content("#shown-version") == "0"
    position = int(page.text_content("#shown-position"))
    assert page.text_content("#shown-due-at"), "the due date the server computed"
    if os.environ.get("HOSO_WEB_DESK_SCREENSHOT"):
        page.screenshot(path=os.environ["HOSO_WEB_DESK_SCREENSHOT"], full_page=True)
    page.close()

    # The dossier is in the log, as the normal gRPC client and the auditor's replay see it.
    dossier = get_dossier(pb, addr, tokens["auditor"], code).dossier
    assert (dossier.dossier_id, dossier.channel) == (dossier_id, pb.dossier.CHANNEL_ONLINE)
    with grpc.insecure_channel(addr) as channel:
        replay = list(
            pb.audit_grpc.AuditServiceStub(channel).ReplayDossier(
                pb.audit.ReplayDossierRequest(dossier=pb.dossier.DossierRef(receipt_code=code)),
                metadata=(("authorization", f"Bearer {tokens['auditor']}"),),
                timeout=30,
            )
        )
    assert [item.event.event_type for item in replay] == ["DossierReceived"]
    event = replay[0].event
    assert (event.event_id, event.position) == (dossier_id, position)
    assert event.actor == "dev.desk-officer", "the actor comes from the page's bearer token"
    assert json.loads(event.data_json)["receipt_code"] == code


def test_a_receipt_whose_answer_was_lost_is_sent_again_and_recorded_once(pb, web_server, page_origin, browser):
    import grpc

    addr, tokens = web_server
    page = open_desk(browser, page_origin, addr)
    lost = []

    def lose_the_first_answer(route):
        if lost:
            route.continue_()
            return
        lost.append(route.fetch())  # the server records the receipt ...
        route.abort("connectionreset")  # ... but its answer never reaches the page

    page.route("**/hoso.v1.DeskService/ReceiveDossier", lose_the_first_answer)
    code = receive(page, tokens["desk_officer"])
    page.wait_for_selector("#failure:not([hidden])")
    # A success: grpc-web carries the status in a trailer frame at the end of the body.
    assert lost and b"grpc-status:0" in lost[0].body(), "the lost answer was an acknowledgement"
    # The officer clicks again: the same command, which the server answers without writing.
    page.click("#send")
    wait_for_the_dossier(page)
    assert page.text_content("#status") == "Already received: nothing new was written."
    assert page.text_content("#shown-receipt-code") == code
    page.close()
    with grpc.insecure_channel(addr) as channel:
        replay = list(
            pb.audit_grpc.AuditServiceStub(channel).ReplayDossier(
                pb.audit.ReplayDossierRequest(dossier=pb.dossier.DossierRef(receipt_code=code)),
                metadata=(("authorization", f"Bearer {tokens['auditor']}"),),
                timeout=30,
            )
        )
    assert [item.event.event_type for item in replay] == ["DossierReceived"]


@pytest.mark.parametrize(
    ("role", "code", "words"),
    [
        (None, "UNAUTHENTICATED", "unknown or revoked bearer token"),
        ("agency_officer", "PERMISSION_DENIED", "agency_officer"),
    ],
)
def test_a_refused_receipt_shows_the_code_and_the_reason_and_writes_nothing(
    pb, web_server, page_origin, browser, role, code, words
):
    addr, tokens = web_server
    page = open_desk(browser, page_origin, addr)
    receipt = receive(page, tokens[role] if role else "not-a-token")
    page.wait_for_selector("#failure:not([hidden])")
    assert page.get_attribute("#failure", "data-code") == code
    assert words in page.text_content("#failure")
    assert page.is_hidden("#dossier")
    page.close()
    err = get_dossier(pb, addr, tokens["auditor"], receipt)
    assert err.code().name == "NOT_FOUND", err


def test_the_page_from_an_origin_not_listed_is_stopped_by_the_browser(pb, web_server, page_origin, browser):
    addr, tokens = web_server
    # The same page from another origin: the same port by another name.
    other = page_origin.replace("127.0.0.1", "localhost")
    page = open_desk(browser, other, addr)
    receipt = receive(page, tokens["desk_officer"])
    page.wait_for_selector("#failure:not([hidden])")
    assert page.is_hidden("#dossier")
    page.close()
    err = get_dossier(pb, addr, tokens["auditor"], receipt)
    assert err.code().name == "NOT_FOUND", err


def preflight(addr, origin):
    connection = http.client.HTTPConnection(addr, timeout=30)
    try:
        connection.request(
            "OPTIONS",
            "/hoso.v1.DeskService/ReceiveDossier",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout",
            },
        )
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def test_preflight_allows_the_desk_headers_for_listed_origins_only(web_server, page_origin):
    addr, _ = web_server
    allowed = preflight(addr, page_origin)
    assert allowed.status == 200
    assert allowed.getheader("access-control-allow-origin") == page_origin
    assert "POST" in allowed.getheader("access-control-allow-methods")
    headers = {h.strip() for h in allowed.getheader("access-control-allow-headers").split(",")}
    assert {"authorization", "content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"} <= headers
    refused = preflight(addr, "http://desk.elsewhere.example")
    assert refused.getheader("access-control-allow-origin") is None


def test_grpc_web_without_a_token_is_unauthenticated_with_readable_status(pb, web_server, page_origin):
    addr, _ = web_server
    body = pb.desk.ReceiveDossierRequest(receipt_code="G09.20-20260609-0000001").SerializeToString()
    connection = http.client.HTTPConnection(addr, timeout=30)
    try:
        connection.request(
            "POST",
            "/hoso.v1.DeskService/ReceiveDossier",
            body=struct.pack(">BI", 0, len(body)) + body,
            headers={"Origin": page_origin, "Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1"},
        )
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 200
    assert response.getheader("grpc-status") == "16", response.getheaders()
    # Percent-encoded, as gRPC sends it; grpc-web clients decode it.
    assert "missing bearer token" in urllib.parse.unquote(response.getheader("grpc-message"))
    exposed = {h.strip() for h in response.getheader("access-control-expose-headers").split(",")}
    assert {"grpc-status", "grpc-message"} <= exposed


def test_browser_desks_are_off_by_default(server):
    """The shared server has no [web]: it speaks HTTP/2 only, so a browser's HTTP/1.1
    preflight gets no answer at all."""
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        preflight(server.addr, "http://127.0.0.1:1")


def test_the_checked_in_bundle_is_what_the_build_makes(tmp_path):
    """`npm ci && npm run build` in a copy of examples/web-desk rebuilds dist/desk.js from proto/
    byte for byte: the bundle in the repository is current."""
    npm = shutil.which("npm")
    assert npm, "npm is missing: install Node.js and npm (Debian packages nodejs and npm)"
    copy = tmp_path / "examples" / "web-desk"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("node_modules", "dist", "gen"))
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
        result = subprocess.run([npm, *step], cwd=copy, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"npm {' '.join(step)}:\n{result.stdout}{result.stderr}"
    assert filecmp.cmp(copy / "dist" / "desk.js", EXAMPLE / "dist" / "desk.js", shallow=False), (
        "examples/web-desk/dist/desk.js is not what `npm ci && npm run build` makes from proto/: "
        "run them in examples/web-desk and commit dist/desk.js"
    )
