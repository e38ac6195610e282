"""The demo month's disclosure checked as a person would: the README's demo month (`hoso gen
--seed 1 --months 1 --start 2025-09`) imported into a real server, its HTML printed to A4 PDF in
headless Chromium (the letter with Appendices I and II on at most 4 pages) and its XLSX opened
with openpyxl (numbers are numbers, no cell over Excel's limit).

Slow (it imports about 65,000 dossiers): HOSO_SKIP_DEMO_MONTH=1 skips it.
"""

import os
import re
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import _first_line, _hoso_bin, _read_tokens

CHROMIUM = Path("/usr/bin/chromium")
EXCEL_CELL_LIMIT = 32_767
MONTH = "2025-09"


def chromium_available():
    if CHROMIUM.exists():
        return True
    assert not os.environ.get("HOSO_REQUIRE_CHROMIUM"), (
        "HOSO_REQUIRE_CHROMIUM is set but /usr/bin/chromium is missing: install the Debian package chromium"
    )
    return False


def pdf_pages(pdf: bytes) -> int:
    """The pages of a PDF: its `/Type /Page` objects (not `/Pages`)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def print_to_pdf(html: Path, pdf: Path):
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf}",
                f"file://{html}",
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    return pdf.read_bytes()


@pytest.fixture(scope="module")
def demo_month(tmp_path_factory):
    """The demo month's disclosure as HTML and XLSX files, from a server of its own."""
    if os.environ.get("HOSO_SKIP_DEMO_MONTH"):
        pytest.skip("HOSO_SKIP_DEMO_MONTH is set")
    binary = str(_hoso_bin())
    work = tmp_path_factory.mktemp("demo-month")

    def hoso(*args, env=None, timeout=1800, codes=(0,)):
        result = subprocess.run(
            [binary, *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode in codes, f"hoso {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    hoso("gen", "--seed", "1", "--months", "1", "--start", MONTH, "--out", "sept.ndjson",
         "--config-out", "demo.toml", "--catalogue-out", "demo-catalogue.csv")  # fmt: skip
    config = (work / "demo.toml").read_text(encoding="utf-8")
    assert "[agency_names]" in config and "Sở Xây dựng" in config, "gen writes the agencies' names"
    env = {k: v for k, v in os.environ.items() if k != "HOSO_CONFIG"}
    env["HOSO_LOG"] = "warn"
    process = subprocess.Popen(
        [binary, "serve", "--config", "demo.toml", "--listen", "127.0.0.1:0", "--data-dir", "data"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        line = _first_line(process)
        assert line.startswith("hoso: serving on "), line
        threading.Thread(target=process.stdout.read, daemon=True).start()
        tokens = _read_tokens(work / "data")
        client = dict(env, HOSO_SERVER=f"http://{line.split()[-1]}", HOSO_TOKEN=tokens["operator"])
        hoso("catalogue", "load", "demo-catalogue.csv", "--decision", "1/QĐ-UBND", "--effective", "2025-01-01",
             env=client)  # fmt: skip
        # Every generated life is accepted: the green lane comes from the catalogue loaded above.
        said = hoso("import", "sept.ndjson", "--parallel", "16", env=client)
        assert "imported 65260 dossiers" in said, said
        files = {}
        for fmt in ("html", "xlsx"):
            said = hoso("disclose", "--month", MONTH, "--format", fmt, env=client)
            assert "warning" not in said, said
            files[fmt] = work / f"cong-khai-{MONTH}.{fmt}"
            assert files[fmt].exists(), said
        yield files
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def test_the_letter_with_appendices_i_and_ii_prints_on_at_most_four_a4_pages(demo_month):
    if not chromium_available():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)")
    html = demo_month["html"].read_text(encoding="utf-8")
    # The letter up to the end of Appendix II: everything before Appendix III.
    cut = html.index('<section class="appendix" id="appendix-3">')
    letter = demo_month["html"].with_name("letter.html")
    letter.write_text(html[:cut] + "</body>\n</html>\n", encoding="utf-8")
    pages = pdf_pages(print_to_pdf(letter, letter.with_suffix(".pdf")))
    whole = pdf_pages(print_to_pdf(demo_month["html"], demo_month["html"].with_suffix(".pdf")))
    print(f"\nA4 pages: the letter with Appendices I and II {pages}, the whole document {whole}")
    assert 1 <= pages <= 4, f"the letter with Appendices I and II takes {pages} A4 pages"
    assert whole > pages


def test_the_workbook_holds_numbers_and_no_cell_over_excels_limit(demo_month):
    import openpyxl

    workbook = openpyxl.load_workbook(demo_month["xlsx"])
    names = workbook.sheetnames
    assert names[:3] == ["Phụ lục I", "Phụ lục II", "Phụ lục IV"], names
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    assert len(cell.value) <= EXCEL_CELL_LIMIT, f"{sheet.title}!{cell.coordinate}"
    # Appendix II: every unit's counts and rate are numbers, and the total's counts add up.
    appendix_2 = workbook["Phụ lục II"]
    rows = [r for r in appendix_2.iter_rows(values_only=True) if isinstance(r[2], (int, float))]
    assert len(rows) > 100, "a row per unit and the total"
    *units, total = rows
    for row in units:
        assert all(isinstance(v, (int, float)) for v in row[2:5]), row
        assert isinstance(row[5], (int, float)) or row[5] == "không có hồ sơ", row
    assert sum(r[4] for r in units) == total[4], "the overdue counts add up to the province's"
    # Appendix IV: one row per overdue dossier, as many as Appendix II's total counts.
    appendix_4 = workbook["Phụ lục IV"]
    dossiers = [r for r in appendix_4.iter_rows(values_only=True) if isinstance(r[7], int)]
    assert len(dossiers) == total[4]
    # Appendix I: indicator 2's rate and points are numbers with two decimals shown.
    appendix_1 = workbook["Phụ lục I"]
    row = next(r for r in appendix_1.iter_rows() if r[0].value == "2")
    assert isinstance(row[5].value, float) and row[5].number_format == "0.00", row[5].value
