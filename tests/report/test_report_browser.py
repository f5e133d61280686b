"""Open generated reports in a real headless chromium and check what a reader sees: plotly really drew the
plots, every panel of every report kind has data, labels do not overlap, the notification wraps, and all
reports of a folder share one plotly.js."""

import json
import re
import shutil
import subprocess

import pytest

from guardrail import report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs chromium (apt-get install chromium)")

# Injected into a copy of the report: after plotly has drawn, write per plot the points each panel (cartesian
# subplot; tables count rows) holds, leaving out threshold lines, and how many labels overlap.
PANEL_CHECK = """
<script>
window.addEventListener('load', () => setTimeout(() => {
  const out = [];
  document.querySelectorAll('.js-plotly-plot').forEach((gd, i) => {
    const counts = {};
    (gd._fullLayout._subplots.cartesian || []).forEach(sp => counts[sp] = 0);
    gd._fullData.forEach(t => {
      if (t.type === 'table') { counts['table'] = (t.cells.values[0] || []).length; return; }
      if ((t.name || '').startsWith('threshold')) return;
      const sp = (t.xaxis || 'x') + (t.yaxis || 'y');
      counts[sp] = (counts[sp] || 0) + Array.from(t.y || []).filter(v => v !== null && v !== undefined).length;
    });
    const boxes = Array.from(gd.querySelectorAll('g.annotation')).map(a => a.getBoundingClientRect())
      .filter(r => r.width > 0);
    let overlaps = 0;
    for (let a = 0; a < boxes.length; a++) for (let b = a + 1; b < boxes.length; b++) {
      const p = boxes[a], q = boxes[b];
      if (p.left < q.right - 1 && q.left < p.right - 1 && p.top < q.bottom - 1 && q.top < p.bottom - 1) overlaps++;
    }
    out.push({plot: i, title: (gd.layout.title && gd.layout.title.text) || '', counts, overlaps});
  });
  const notes = Array.from(document.querySelectorAll('#notifications pre'))
    .map(p => [getComputedStyle(p).whiteSpace, p.scrollWidth <= p.clientWidth + 1]);
  const pre = document.createElement('pre');
  pre.id = 'panel-check';
  pre.textContent = JSON.stringify({plots: out, notes, pageFits: document.documentElement.scrollWidth <= window.innerWidth});
  document.body.appendChild(pre);
}, 500));
</script>
"""


def dump_dom(html_file, profile_dir) -> str:
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1400,2400", f"--user-data-dir={profile_dir}", "--virtual-time-budget=10000",
            "--dump-dom", f"file://{html_file}",
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return result.stdout


def panel_check(path, profile) -> dict:
    probe = path.with_name(f"probe-{path.name}")
    probe.write_text(path.read_text().replace("</body>", PANEL_CHECK + "</body>"))
    dom = dump_dom(probe, profile)
    found = re.search(r'<pre id="panel-check">(.*?)</pre>', dom, re.S)
    assert found, "the panel check did not run (plotly not loaded?)"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.browser
@needs_chromium
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


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("kind", ["deployment", "rollback", "shadow-promote", "shadow-reject"])
def test_every_panel_of_every_report_kind_has_data(report_kinds, kind, tmp_path):
    path = report.write_report(report_kinds.arns[kind], tmp_path / f"{kind}.html", client=report_kinds.session.client)
    checked = panel_check(path, tmp_path / "profile")
    plots = checked["plots"]
    titles = [p["title"] for p in plots]
    assert len(plots) >= (4 if kind.startswith("shadow") else 2), titles
    for plot in plots:
        empty = [panel for panel, points in plot["counts"].items() if not points]
        assert not empty, f"{kind}: {plot['title'] or plot['plot']} has empty panels {empty}: {plot['counts']}"
        assert plot["overlaps"] == 0, f"{kind}: {plot['overlaps']} overlapping labels in {plot['title']}"
    # The notification text wraps inside its cell, and nothing makes the page scroll sideways.
    assert checked["notes"] and all(ws == "pre-wrap" and fits for ws, fits in checked["notes"]), checked["notes"]
    assert checked["pageFits"]


@pytest.mark.browser
@needs_chromium
def test_reports_of_a_folder_share_one_plotly_js(report_kinds, tmp_path):
    paths = [report.write_report(arn, tmp_path / f"{kind}.html", client=report_kinds.session.client)
             for kind, arn in report_kinds.arns.items()]
    assert [p.name for p in tmp_path.glob("plotly*.js")] == ["plotly.min.js"]
    for path in paths:
        html = path.read_text()
        assert html.count('src="plotly.min.js"') == 1 and "plotly.js v" not in html  # referenced, not inlined
        assert path.stat().st_size < 300_000, f"{path.name}: {path.stat().st_size} bytes"
    dom = dump_dom(paths[0], tmp_path / "profile")
    assert dom.count("js-plotly-plot") >= 2  # drawn from the shared copy, offline
