"""Accuracy against training minutes, drawn from the two training benchmarks' result files.

bench/train-minutes-result.txt (the recipe trained longer and longer: one line) and
bench/train-ablation-result.txt (one change at a time at equal steps: one labelled point each)
become three panels: `auto`'s success, CoMIR+MI's success (both the mean over the five levels)
and auto's median error, each against the training minutes measured in the same run.
Usage: python bench/plot_training.py MINUTES_TXT ABLATION_TXT OUT_PNG
"""
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402


def rows(path):
    """(label, minutes, auto %, CoMIR+MI %, auto error px) per result line; other lines skipped."""
    out = []
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*(\S+)\s+([\d.]+)\s+((?:\d+% +){4}\d+%)\s+((?:\d+% +){4}\d+%)\s+([\d.]+)px", line)
        if not m:
            continue
        label, minutes, auto, mi, err = m.groups()
        mean = lambda s: sum(float(v) for v in s.replace("%", " ").split()) / 5
        # The defaults row (training stopped by its own checks) is a point of its own.
        if "defaults" in line:
            label = f"defaults: stopped after {label} steps"
        out.append((label, float(minutes), mean(auto), mean(mi), float(err)))
    return out


def main(minutes_txt, ablation_txt, out_png):
    steps, variants = rows(minutes_txt), rows(ablation_txt)
    defaults = [r for r in steps if r[0].startswith("defaults")]
    steps = [r for r in steps if not r[0].startswith("defaults")]
    if not steps or not variants:
        sys.exit(f"no result lines in {minutes_txt if not steps else ablation_txt}")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = [(2, "auto: success, mean of levels 1-5 (%)"), (3, "CoMIR + MI: success, mean of levels 1-5 (%)"), (4, "auto: median error (px)")]
    for ax, (col, title) in zip(axes, panels):
        ax.plot([r[1] for r in steps], [r[col] for r in steps], "o-", color="tab:blue", label="recipe, longer training")
        for r in steps:
            ax.annotate(f"{r[0]} steps", (r[1], r[col]), textcoords="offset points", xytext=(4, -10), fontsize=7, color="tab:blue")
        ax.scatter([r[1] for r in variants], [r[col] for r in variants], color="tab:red", zorder=3, label="one change, same steps")
        for r in variants:
            ax.annotate(r[0], (r[1], r[col]), textcoords="offset points", xytext=(4, 3), fontsize=7, color="tab:red")
        for r in defaults:
            ax.scatter([r[1]], [r[col]], marker="*", s=140, color="tab:green", zorder=4, label="comir train defaults")
            ax.annotate(r[0], (r[1], r[col]), textcoords="offset points", xytext=(6, 6), fontsize=7, color="tab:green")
        ax.set_xlabel("training minutes (2 CPU cores)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if col == 4:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.1f"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.1f"))
        else:
            ax.set_ylim(0, 105)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("What buys accuracy per training minute (demo pair's unseen half, 10 cases per level)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
