import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from helpers import plots  # noqa: E402


def test_loss_plot_has_one_line_per_split():
    history = pd.DataFrame({"step": [1, 2, 3, 3], "split": ["train"] * 3 + ["validation"],
                            "loss": [2.0, 1.0, 0.5, 0.7]})
    fig = plots.plot_loss(history)
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].get_lines()}
    assert lines == {"train": [2.0, 1.0, 0.5], "validation": [0.7]}


def test_accuracy_bars_are_percentages():
    table = pd.DataFrame({"base": [0.0, 0.1], "fine-tuned": [0.5, 0.4]},
                         index=["execution_match", "exact_match"])
    fig = plots.plot_accuracy(table)
    heights = [round(bar.get_height(), 6) for bar in fig.axes[0].patches]
    assert heights == [0.0, 10.0, 50.0, 40.0]
