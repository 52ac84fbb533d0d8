import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from helpers import plots  # noqa: E402


def test_loss_plot_has_one_line_per_split_and_says_what_the_loss_covers():
    history = pd.DataFrame({"step": [1, 2, 3, 3], "split": ["train"] * 3 + ["validation"],
                            "loss": [2.0, 1.0, 0.5, 0.7]})
    fig = plots.plot_loss(history, loss_on="answer tokens")
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].get_lines()}
    assert lines == {"train": [2.0, 1.0, 0.5], "validation": [0.7]}
    assert fig.axes[0].get_ylabel() == "loss (answer tokens)"
    assert plots.plot_loss(history, loss_on="every token").axes[0].get_ylabel() == "loss (every token)"


def test_accuracy_bars_are_percentages():
    table = pd.DataFrame({"base": [0.0, 0.1], "fine-tuned": [0.5, 0.4]},
                         index=["execution_match", "exact_match"])
    fig = plots.plot_accuracy(table)
    heights = [round(bar.get_height(), 6) for bar in fig.axes[0].patches]
    assert heights == [0.0, 10.0, 50.0, 40.0]


def test_token_histogram_counts_every_example_and_marks_a_near_limit():
    counts = [100, 120, 130, 3000, 5000]
    fig = plots.plot_token_counts(counts, limit=4096)
    assert sum(bar.get_height() for bar in fig.axes[0].patches) == len(counts)
    assert [line.get_xdata()[0] for line in fig.axes[0].get_lines()] == [4096]
    far = plots.plot_token_counts([100, 120], limit=65_536)  # the limit would squash the bars
    assert far.axes[0].get_lines() == []


def test_approaches_plot_has_a_panel_per_measure_and_a_bar_per_approach():
    table = pd.DataFrame({"execution accuracy (%)": [5.0, 40.0], "prompt tokens per request": [81.0, 233.0]},
                         index=["zero-shot", "few-shot"])
    fig = plots.plot_approaches(table)
    assert [ax.get_title() for ax in fig.axes] == list(table.columns)
    assert [bar.get_height() for bar in fig.axes[1].patches] == [81.0, 233.0]


def test_break_even_plot_crosses_at_the_break_even():
    from helpers.eval import break_even

    costs = break_even.table({"seconds": (1.5, 100.0, 0.5), "usd": (0.4, 1.0, 0.5)})
    fig = plots.plot_break_even(costs)
    prompting, tuned, marker = fig.axes[0].get_lines()
    assert marker.get_xdata()[0] == 100 and prompting.get_xdata()[-1] == 200
    assert tuned.get_ydata()[-1] == 100.0 + 200 * 0.5 and prompting.get_ydata()[-1] == 300
    assert len(fig.axes[1].get_lines()) == 2  # never breaks even: no marker


def test_serving_chart_draws_no_bar_for_a_figure_nobody_measured():
    """In-process generation is measured one request at a time only: its "4 at once" cell is empty, and the
    chart must show nothing there, not a bar of 0."""
    from helpers.serve import measure

    lines = {"in-process generate": {"tokens_per_s": 50.0},
             "transformers serve": {"tokens_per_s": 40.0, "tokens_per_s_x4": 45.0, "ttft_s": 0.2, "ttft_s_x4": 0.5}}
    fig = plots.plot_serving(measure.table(lines, concurrent=4))
    throughput = fig.axes[0]
    visible = [(round(bar.get_height(), 3)) for bar in throughput.patches if bar.get_visible()]
    assert sorted(visible) == [40.0, 45.0, 50.0]
    labels = [text.get_text() for text in throughput.texts]
    assert "0" not in labels and "nan" not in labels and sorted(t for t in labels if t) == ["40", "45", "50"]
