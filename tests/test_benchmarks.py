"""The benchmark harness: sections per benchmark and the summary table in BENCHMARKS.md, interleaved rounds and
paired ratios, the plain loop."""

from __future__ import annotations

import itertools

import torch

from benchmarks.__main__ import available
from benchmarks.loops import plain_step
from benchmarks.sections import WHOLE_RUN, Section, Summary, commit, place, summarize
from benchmarks.timing import Stats, interleave
from tests.helpers.configs import compose_config

QUESTIONS = {"train", "loader", "infer", "colorize", "eval", "demo", "ddcolor", "video", "startup"}
"""The benchmarks that answer the questions people ask again (one `bench_<name>.py` each)."""


def test_every_recurring_question_has_one_benchmark():
    assert set(available()) >= QUESTIONS


def test_a_section_replaces_only_its_own_markers_and_new_ones_are_appended():
    document = "# Benchmarks\n\nnotes\n\n<!-- bench:a -->\nold a\n<!-- /bench:a -->\n\n## GPU (by hand)\nkept\n"
    updated = place(document, "a", "## A\nnew a\n")
    assert "old a" not in updated and "## A\nnew a" in updated and updated.endswith("## GPU (by hand)\nkept\n")
    appended = place(updated, "b", "## B\nb\n")
    assert appended.startswith(updated.rstrip("\n")) and appended.endswith(
        "<!-- bench:b -->\n## B\nb\n<!-- /bench:b -->\n"
    )
    assert place(appended, "a", "## A\nnewer\n").count("<!-- bench:a -->") == 1


def test_a_section_renders_title_provenance_tables_conclusion_and_its_summary_row():
    section = Section("Title", "| a |\n|---|\n| 1 |\n", "It is fast.", Summary("Q?", "1x", ">= 1x", "yes"))
    text = section.render("Command: `make bench ARGS=x`.")
    assert text.startswith("## Title\n\nCommand: `make bench ARGS=x`.\n\n| a |")
    assert "**Conclusion.** It is fast." in text and text.endswith("<!-- summary: | Q? | - | 1x | >= 1x | yes | -->\n")
    before = Section("T", "", "", Summary("Q?", "2x", before="1x")).render("p")
    assert before.endswith("<!-- summary: | Q? | 1x | 2x | - | - | -->\n")


def test_the_summary_table_is_rebuilt_from_the_sections_in_their_order_and_keeps_the_whole_run_row():
    document = "# Benchmarks\n\n<!-- bench:summary -->\n<!-- /bench:summary -->\n"
    for name, question in (("b", "B?"), ("a", "A?")):
        document = place(document, name, Section(name, "", "", Summary(question, "1x")).render("p"))
    document += "\n## GPU (by hand)\n<!-- summary: | GPU? | not measured (no GPU lent) | >= 0.9x | - | -->\n"
    whole = Summary(WHOLE_RUN, "500 s", "< 10 minutes", "yes")
    first = summarize(document, whole)
    rows = [line for line in first.split("<!-- /bench:summary -->")[0].splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| B?", "| A?", "| GPU?", f"| {WHOLE_RUN}"]
    again = summarize(place(first, "a", Section("a", "", "", Summary("A?", "2x")).render("p")))
    assert "| A? | - | 2x | - | - |" in again and "| A? | - | 1x |" not in again and whole.row() in again
    # a row written by hand without a `before` cell gets one
    assert "| GPU? | - | not measured (no GPU lent) | >= 0.9x | - |" in again


def test_the_commit_measured_is_a_short_hash():
    assert commit().split()[0].isalnum()


def test_ratios_are_paired_per_round_so_a_shared_slowdown_cancels(capsys):
    # both variants slow down alike in every other round (a background job): rates swing 4x, ratios do not
    calls = itertools.count()

    def load() -> float:
        return (1.0, 0.25)[next(calls) // 2 % 2]  # the two calls of a round share the round's load

    def base() -> float:
        return 100.0 * load()

    def half() -> float:
        return 50.0 * load()

    measured = interleave({"base": base, "half": half}, "test", warmup=0, min_rounds=4, max_rounds=4)
    assert max(measured.rates["base"].values) / min(measured.rates["base"].values) == 4
    assert measured.ratios["half"].values == [0.5] * 4 and measured.settled()
    assert "test round 4: base" in capsys.readouterr().err  # every figure is printed as it is measured


def test_rounds_stop_once_the_ratios_settle():
    measured = interleave({"a": lambda: 2.0, "b": lambda: 1.0}, "steady", warmup=0, min_rounds=3, max_rounds=10)
    assert len(measured.ratios["b"].values) == 3
    assert Stats([1.0, 2.0, 4.0]).cell("{:.1f}", "x") == "2.0x (1.0-4.0)"


def test_the_plain_loop_trains_every_parameter_of_a_gan():
    cfg = compose_config("train", ["model=pix2pix", "model.generator.num_downs=3"])
    from colorization.modules.build import build_module

    model = build_module(cfg.model, cfg.colorspace.name)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    step = plain_step(model)
    step({"l": torch.rand(2, 1, 32, 32) * 100, "ab": (torch.rand(2, 2, 32, 32) - 0.5) * 60})
    moved = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert moved == {"generator", "discriminator"}
    assert all(p.requires_grad for p in model.discriminator.parameters())  # unfrozen after the generator step
