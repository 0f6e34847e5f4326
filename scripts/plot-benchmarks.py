#!/usr/bin/env python3
"""Renders the benchmark curves of docs/benchmarks.md: every docs/benchmarks/*.json written by
`psa-operator bench <name> --json` becomes docs/benchmarks/<same name>.svg.

    scripts/plot-benchmarks.py [DIR]        # DIR defaults to docs/benchmarks next to this script

Known shapes (one JSON object per file):
  convergence  {"bench":"convergence","provider":…,"points":[{"mappings","seconds","psa_calls"}],"fit":{…}}
               → seconds and PSA calls over mappings; with several providers also convergence.svg
               (from each convergence-<provider>.json; kept earlier runs are drawn alone)
  memory       {"bench":"memory","points":[{"mappings","rssMiB":{idle,withMappings,…}}],"fit":{…}}
               → RSS over mappings, with the target line
  intake       {"benchmark":"intake","modes":[{"mode","psaOperator":{alertsPerSecond},
               "alertmanager":{alertsPerSecond}}]} → bars, psa-operator beside Alertmanager
  anything else with "points": every numeric field of the points over the first size field;
  otherwise the numeric leaves of "latency" (or of the whole object) as bars.
A file that is missing, unreadable or of no known shape is reported and skipped; the others are
still drawn. matplotlib is installed into a private virtualenv on first use when it is missing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("PSA_TOOLS_DIR", Path.home() / ".cache" / "psa-operator-tools")) / "plot-venv"


def ensure_matplotlib():
    """Imports matplotlib, or installs it in VENV and runs this script again under that Python."""
    try:
        import matplotlib  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("PSA_PLOT_REEXEC"):
        sys.exit("matplotlib still missing after installing it into " + str(VENV))
    python = VENV / "bin" / "python3"
    if not python.exists():
        print(f"installing matplotlib into {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
    env = dict(os.environ, PSA_PLOT_REEXEC="1")
    os.execve(str(python), [str(python), __file__, *sys.argv[1:]], env)


SIZE_FIELDS = ("mappings", "rate", "alerts", "clients", "events", "x")


def numeric_leaves(value, prefix=""):
    """(dotted path, number) for every number under value, booleans excluded."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [(prefix, float(value))]
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += numeric_leaves(v, f"{prefix}.{k}" if prefix else k)
        return out
    return []


def kind_of(doc, stem):
    kind = doc.get("bench") or doc.get("benchmark")
    if kind:
        return kind
    return stem.split("-")[0]


def fit_text(fit):
    if not isinstance(fit, dict):
        return ""
    parts = [f"{k} = {v:g}" for k, v in fit.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return "fit: " + ", ".join(parts) if parts else ""


def sorted_points(doc, x_field):
    points = [p for p in doc.get("points", []) if isinstance(p, dict) and x_field in p]
    return sorted(points, key=lambda p: p[x_field])


def plot_convergence(plt, docs, title):
    """docs: [(label, doc)]; seconds and PSA calls over mappings, one line per provider."""
    fig, (ax_s, ax_c) = plt.subplots(1, 2, figsize=(10, 4))
    drawn = 0
    for label, doc in docs:
        points = sorted_points(doc, "mappings")
        if not points:
            continue
        xs = [p["mappings"] for p in points]
        calls_field = "psa_calls" if "psa_calls" in points[0] else "psaCalls"
        ax_s.plot(xs, [p.get("seconds", p.get("secondsToAllReady")) for p in points], marker="o", label=label)
        ax_c.plot(xs, [p.get(calls_field) for p in points], marker="o", label=label)
        drawn += 1
    if not drawn:
        plt.close(fig)
        raise ValueError("no points with mappings")
    ax_s.set(xlabel="CustomerMappings", ylabel="seconds to all Ready", title="time")
    ax_c.set(xlabel="CustomerMappings", ylabel="PSA calls", title="PSA calls")
    for ax in (ax_s, ax_c):
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    if len(docs) == 1:
        fig.text(0.5, 0.01, fit_text(docs[0][1].get("fit")), ha="center", fontsize=8)
    return fig


def plot_memory(plt, doc):
    points = sorted_points(doc, "mappings")
    if not points:
        raise ValueError("no points with mappings")
    xs = [p["mappings"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in ("idle", "withMappings", "withMappingsAndEvents", "peak"):
        ys = [p.get("rssMiB", {}).get(key) for p in points]
        if all(isinstance(y, (int, float)) for y in ys):
            ax.plot(xs, ys, marker="o", label=key)
    target = doc.get("targetMiB")
    if isinstance(target, (int, float)):
        ax.axhline(target, color="red", linestyle="--", label=f"target {target:g} MiB")
    events = doc.get("events")
    ax.set(xlabel="CustomerMappings", ylabel="operator RSS (MiB)",
           title=f"memory ({events:,} events stored)" if isinstance(events, int) else "memory")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.text(0.5, 0.01, fit_text(doc.get("fit")), ha="center", fontsize=8)
    return fig


def plot_intake(plt, doc):
    modes = [m for m in doc.get("modes", []) if isinstance(m, dict)]
    if not modes:
        raise ValueError("no modes")
    labels = [f"{m.get('mode')} ({m.get('alertsPerRequest')}/request)" for m in modes]
    ours = [m.get("psaOperator", {}).get("alertsPerSecond", 0) for m in modes]
    peer = [m.get("alertmanager", {}).get("alertsPerSecond", 0) for m in modes]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = range(len(modes))
    ax.bar([x - 0.2 for x in xs], ours, width=0.4, label="psa-operator (202 after fsync)")
    ax.bar([x + 0.2 for x in xs], peer, width=0.4, label=f"Alertmanager {doc.get('alertmanagerVersion', '')}")
    for x, m in zip(xs, modes):
        ratio = m.get("ratio")
        if isinstance(ratio, (int, float)):
            ax.annotate(f"{ratio:.2f}×", (x, max(ours[x], peer[x])), ha="center", va="bottom")
    ax.set_xticks(list(xs), labels)
    ax.set(ylabel="alerts per second", title=f"intake, {doc.get('clients', '?')} clients")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    return fig


def plot_generic(plt, doc, title):
    points = doc.get("points")
    if isinstance(points, list) and points and isinstance(points[0], dict):
        x_field = next((f for f in SIZE_FIELDS if f in points[0]), None)
        if x_field:
            points = sorted_points(doc, x_field)
            fig, ax = plt.subplots(figsize=(7, 4.5))
            series = {}
            for p in points:
                for path, y in numeric_leaves({k: v for k, v in p.items() if k != x_field}):
                    series.setdefault(path, []).append((p[x_field], y))
            for path, xy in series.items():
                ax.plot([a for a, _ in xy], [b for _, b in xy], marker="o", label=path)
            ax.set(xlabel=x_field, title=title)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
            fig.text(0.5, 0.01, fit_text(doc.get("fit")), ha="center", fontsize=8)
            return fig
    leaves = numeric_leaves(doc.get("latency", doc))
    leaves = [(k, v) for k, v in leaves if k not in ("cores",)]
    if not leaves:
        raise ValueError("no numbers to draw")
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(leaves))))
    ax.barh([k for k, _ in leaves], [v for _, v in leaves])
    ax.set(title=title)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def main(argv):
    root = Path(__file__).resolve().parent.parent
    folder = Path(argv[1]) if len(argv) > 1 else root / "docs" / "benchmarks"
    if not folder.is_dir():
        print(f"no {folder}: nothing to draw")
        return 0
    files = sorted(folder.glob("*.json"))
    if not files:
        print(f"no *.json in {folder}: nothing to draw")
        return 0
    ensure_matplotlib()
    import matplotlib
    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    plt.rcParams["svg.hashsalt"] = "psa-operator"  # same input → same SVG (stable diffs)
    plt.rcParams["svg.fonttype"] = "none"

    drawn, convergence = [], []
    for path in files:
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            kind = kind_of(doc, path.stem)
            if kind == "convergence":
                label = doc.get("provider") or path.stem.removeprefix("convergence-")
                # The every-provider plot takes each provider's current file
                # (convergence-<provider>.json), not kept earlier runs (…-before-….json).
                if path.stem == f"convergence-{label.lower()}":
                    convergence.append((label, doc))
                fig = plot_convergence(plt, [(label, doc)], f"convergence, {label}")
            elif kind == "memory":
                fig = plot_memory(plt, doc)
            elif kind == "intake":
                fig = plot_intake(plt, doc)
            else:
                fig = plot_generic(plt, doc, path.stem)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"skipped {path.name}: {e}", file=sys.stderr)
            continue
        out = path.with_suffix(".svg")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        fig.savefig(out, metadata={"Date": None})
        plt.close(fig)
        drawn.append(out.name)
    if len(convergence) > 1:
        try:
            fig = plot_convergence(plt, convergence, "convergence, every provider")
            fig.tight_layout(rect=(0, 0.04, 1, 1))
            fig.savefig(folder / "convergence.svg", metadata={"Date": None})
            plt.close(fig)
            drawn.append("convergence.svg")
        except ValueError as e:
            print(f"skipped convergence.svg: {e}", file=sys.stderr)
    print("drew " + (", ".join(drawn) if drawn else "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
