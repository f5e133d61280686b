"""Open a generated report in a real headless chromium and check that plotly really drew the plots."""

import re
import shutil
import subprocess

import pytest

from guardrail import report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def dump_dom(html_file, profile_dir) -> str:
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile_dir}", "--virtual-time-budget=10000", "--dump-dom", f"file://{html_file}",
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return result.stdout


@pytest.mark.browser
@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs chromium (apt-get install chromium)")
def test_report_renders_plots_in_headless_chromium(rollback_execution, tmp_path):
    path = report.write_report(rollback_execution.arn, tmp_path / "report.html", client=rollback_execution.session.client)
    dom = dump_dom(path, tmp_path / "profile")
    # Plotly adds js-plotly-plot to each div it renders, and draws into .main-svg elements.
    assert dom.count("js-plotly-plot") >= 2
    assert dom.count('class="main-svg"') >= 4
    # Traces really drawn: scatter lines for the timeline and the 5XX/latency series, bars for invocations.
    assert len(re.findall(r'class="trace scatter', dom)) >= 4
    assert 'class="bars"' in dom or "trace bars" in dom
    assert "ROLLED_BACK" in dom
