"""BENCHMARKS.md as the benchmarks write it: one marked section per benchmark, a summary table on top.

A benchmark's `run()` returns a `Section`: its title, its tables, one sentence of conclusion and
one `Summary` row. `python -m benchmarks` renders it under a provenance line (command, machine,
load, date, commit) between ``<!-- bench:<name> -->`` and ``<!-- /bench:<name> -->`` (`place`);
everything outside the markers (the GPU section, the conclusions kept from removed benchmarks) is
left as it is. The summary row travels inside the section as an HTML comment (``<!-- summary:
| ... | -->``), so the top table (`summarize`) is rebuilt from whatever sections the document holds,
in their order, and never disagrees with them; a hand-written section (the GPU one) can carry one too.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "BENCHMARKS.md"
SUMMARY = "summary"
"""The marked block at the top of BENCHMARKS.md that holds the summary table."""
WHOLE_RUN = "`make bench` (every benchmark)"
"""The summary row of a whole run's duration (goal: `WHOLE_RUN_GOAL_S`)."""
WHOLE_RUN_GOAL_S = 600
SUMMARY_HEADER = ("question", "before", "after", "goal", "met")
BASELINE_COMMIT = "0eab957"
"""The code the performance goals were set against. A benchmark that can run the old way beside the new
gives its `Summary.before` from the same run; for the others the top table quotes this commit's figure
(`baseline_figure`), measured on the machine its section names."""
SUMMARY_COMMENT = re.compile(r"^<!-- summary: (\|.*\|) -->$", re.MULTILINE)


@dataclass(frozen=True)
class Summary:
    """A benchmark's row in the top table: the question it answers, the figure, the goal and whether it is met."""

    question: str
    figure: str
    goal: str = "-"
    met: str = "-"
    before: str = ""
    """The figure of the code before the change, measured in the same run ("" when the benchmark cannot)."""

    def row(self) -> str:
        return f"| {self.question} | {self.before or '-'} | {self.figure} | {self.goal} | {self.met} |"


@dataclass(frozen=True)
class Section:
    """What a benchmark's `run()` returns: its part of BENCHMARKS.md, without the provenance line."""

    title: str
    body: str
    """The result tables and what they need to be read (sizes, units), in markdown."""
    conclusion: str
    """One sentence, built from the figures just measured."""
    summary: Summary

    def render(self, provenance: str) -> str:
        return (
            f"## {self.title}\n\n{provenance}\n\n{self.body.strip()}\n\n"
            f"**Conclusion.** {self.conclusion}\n\n<!-- summary: {self.summary.row()} -->\n"
        )


def verdict(met: bool) -> str:
    return "yes" if met else "no"


def machine() -> str:
    """CPU model, cores, GPU (if any), torch version and threads, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} CPUs{gpu}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)"


def commit() -> str:
    """The short hash of the commit measured, with "+ uncommitted changes" when the tree differs from it.

    BENCHMARKS.md itself does not count: the run rewrites it after each benchmark.
    """
    try:
        head = _git("rev-parse", "--short", "HEAD")
        changes = _git("status", "--porcelain", "--", ".", f":(exclude){DOCUMENT.name}")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit (not a git checkout)"
    return f"{head} + uncommitted changes" if changes else head


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def now_utc() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def provenance(name: str, seconds: float, load: tuple[float, float], measured_commit: str) -> str:
    """The line under a section's title: how, where, when and on which code it was measured."""
    return (
        f"Command: `make bench ARGS={name}`. Machine: {machine()}; load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end (shared with other jobs: compare ratios, not absolute rates). "
        f"Date: {now_utc()}. Commit: {measured_commit}. Took {seconds:.0f} s."
    )


def place(document: str, name: str, block: str) -> str:
    """`document` with the marked block of `name` replaced by `block` (appended if the markers are absent)."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    marked = f"{begin}\n{block.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: marked, document, count=1)
    return document.rstrip("\n") + "\n\n" + marked + "\n"


def marked(document: str, name: str) -> str:
    """The text between `name`'s markers ("" when absent)."""
    found = re.search(rf"<!-- bench:{re.escape(name)} -->\n(.*?)<!-- /bench:{re.escape(name)} -->", document, re.DOTALL)
    return found.group(1) if found else ""


def summarize(document: str, whole_run: Summary | None = None) -> str:
    """`document` with its top table rebuilt from the summary comments of its sections, in their order.

    `whole_run` (a whole `make bench` just finished) replaces the row of the whole run's duration;
    without it the row already there is kept.
    """
    outside = document.replace(marked(document, SUMMARY), "")
    rows = [_with_before(row) for row in SUMMARY_COMMENT.findall(outside)]
    kept = [
        _with_before(line) for line in marked(document, SUMMARY).splitlines() if line.startswith(f"| {WHOLE_RUN} |")
    ]
    rows += [whole_run.row()] if whole_run is not None else kept
    header = "| " + " | ".join(SUMMARY_HEADER) + " |\n|" + "---|" * len(SUMMARY_HEADER)
    block = (
        "## Summary\n\nOne row per question; each section below gives the command, machine, date and commit "
        f"of its figures. `before`: the code before the last performance changes, run beside the new code where "
        f"the benchmark can, else the figure of commit {BASELINE_COMMIT} with the machine it was measured on.\n\n"
        + header
        + "\n"
        + "\n".join(rows)
        + "\n"
    )
    return place(document, SUMMARY, block)


def _with_before(row: str) -> str:
    """A summary row with its `before` cell: rows written by hand, with four cells, get ``-``."""
    cells = [cell.strip() for cell in row.strip().strip("|").split(" | ")]
    return row if len(cells) == len(SUMMARY_HEADER) else "| " + " | ".join([cells[0], "-", *cells[1:]]) + " |"


def baseline_figure(name: str) -> str:
    """Benchmark `name`'s summary figure (`WHOLE_RUN`: the whole run's) at `BASELINE_COMMIT`, with the
    machine it ran on ("" without one)."""
    try:
        document = _git("show", f"{BASELINE_COMMIT}:{DOCUMENT.name}")
    except (OSError, subprocess.CalledProcessError):
        return ""
    if name == WHOLE_RUN:
        row = re.search(rf"^(\| {re.escape(WHOLE_RUN)} \|.*\|)$", marked(document, SUMMARY), re.MULTILINE)
        machine_named = re.search(r"Machine: ([^,;]+)", document)
    else:
        section = marked(document, name)
        row, machine_named = SUMMARY_COMMENT.search(section), re.search(r"Machine: ([^,;]+)", section)
    if row is None:
        return ""
    figure = row.group(1).strip("|").split(" | ")[1].strip()
    where = f", {machine_named.group(1).strip()}" if machine_named else ""
    return f"{figure} (commit {BASELINE_COMMIT}{where})"
