"""Turns the runner's measurements into results.md, results.json and throughput.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASELINE = "raw aiohttp"
ANYMAIL_THREADS = "django-anymail, a caller's thread per message in flight"
CELL_TITLES = {
    "0ms@1": "1 in flight",
    "0ms@16": "16 in flight",
    "0ms@64": "64 in flight",
    "20ms@32": "20 ms server, 32 in flight",
}


def rate(cell: dict[str, Any]) -> float | None:
    """Messages per second, or None for a client that could not be measured."""
    return None if "error" in cell else cell["ok"] / cell["wall"]


def cpu_per_message(cell: dict[str, Any]) -> float | None:
    """Client CPU microseconds per message sent."""
    return None if "error" in cell else cell["cpu"] / max(cell["ok"], 1) * 1e6


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _fmt(value: float | None, pattern: str, missing: str = "n/a") -> str:
    return missing if value is None else format(value, pattern)


def _targets(results: dict[str, dict[str, Any]], memory: list[dict[str, Any]]) -> list[str]:
    def r(name: str, key: str) -> float | None:
        cell = results.get(name, {}).get(key)
        return None if cell is None else rate(cell)

    def c(name: str, key: str) -> float | None:
        cell = results.get(name, {}).get(key)
        return None if cell is None else cpu_per_message(cell)

    default, extra = "AsyncPostal (default)", "AsyncPostal (aiohttp extra)"
    rows: list[tuple[str, float | None, str, bool | None]] = []

    def check(label: str, value: float | None, goal: str, met: bool | None) -> None:
        rows.append((label, value, goal, met))

    def at_least(label: str, value: float | None, goal: float) -> None:
        check(label, value, f">= {goal:g}x", None if value is None else value >= goal)

    def at_most(label: str, value: float | None, goal: float) -> None:
        check(label, value, f"<= {goal:g}x", None if value is None else value <= goal)

    slow = "20ms@32"
    at_least(
        "20 ms, 32 in flight: default vs raw aiohttp",
        _ratio(r(default, slow), r(BASELINE, slow)),
        0.95,
    )
    for other in ("pyostal", "django-anymail (Postal backend)"):
        at_least(
            f"20 ms, 32 in flight: default vs {other}", _ratio(r(default, slow), r(other, slow)), 25
        )
    check(
        "20 ms, 32 in flight: default vs django-anymail behind 32 threads of the caller's",
        _ratio(r(default, slow), r(ANYMAIL_THREADS, slow)),
        "none (for comparison)",
        None,
    )
    at_least(
        "20 ms, 32 in flight: default vs postal-py",
        _ratio(r(default, slow), r("postal-py (async)", slow)),
        2.5,
    )
    at_least(
        "no delay, 64 in flight: default vs raw httpx default pool",
        _ratio(r(default, "0ms@64"), r("raw httpx, default pool", "0ms@64")),
        3,
    )
    at_least(
        "no delay: default at 64 in flight vs its own 1 in flight",
        _ratio(r(default, "0ms@64"), r(default, "0ms@1")),
        1,
    )
    for key in ("0ms@16", "0ms@64"):
        at_least(
            f"no delay, {key[4:]} in flight: aiohttp extra vs raw aiohttp",
            _ratio(r(extra, key), r(BASELINE, key)),
            0.35,
        )
    for ours, raw in (
        (default, "raw httpx, SDK's default transport"),
        (extra, "raw httpx, SDK's aiohttp transport"),
    ):
        for key in ("0ms@1", "0ms@16", "0ms@64"):
            at_most(
                f"CPU per message, {key[4:]} in flight: {ours} vs {raw}",
                _ratio(c(ours, key), c(raw, key)),
                1.15,
            )
    if len(memory) == 2:
        small, large = memory
        at_most(
            f"peak RSS: {large['messages']:,} vs {small['messages']:,} messages",
            _ratio(large["peak_rss_kb"], small["peak_rss_kb"]),
            1.1,
        )
    lines = ["| Target | Measured | Goal | Met |", "|---|---:|---|---|"]
    for label, value, goal, met in rows:
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {label} | {_fmt(value, '.2f')}x | {goal} | {verdict} |")
    return lines


def _matrix(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| Client | " + " | ".join(CELL_TITLES.values()) + " |",
        "|---|" + "---:|" * len(CELL_TITLES),
    ]
    for name, cells in results.items():
        row = []
        for key in CELL_TITLES:
            cell = cells.get(key, {"error": "not run"})
            if "error" in cell:
                row.append(cell["error"])
                continue
            ratio = _ratio(rate(cell), rate(results.get(BASELINE, {}).get(key, {"error": ""})))
            row.append(f"{rate(cell):,.0f} ({_fmt(ratio, '.2f')}x)")
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return lines


def _details(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| Client | Cell | Messages/s | x raw aiohttp | Client CPU us/msg | Peak RSS MB "
        "| Failed | Server core load |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cells in results.items():
        for key, title in CELL_TITLES.items():
            cell = cells.get(key, {"error": "not run"})
            if "error" in cell:
                lines.append(f"| {name} | {title} | {cell['error']} | | | | | |")
                continue
            ratio = _ratio(rate(cell), rate(results.get(BASELINE, {}).get(key, {"error": ""})))
            lines.append(
                f"| {name} | {title} | {rate(cell):,.0f} | {_fmt(ratio, '.2f')} "
                f"| {cpu_per_message(cell):,.0f} | {cell['peak_rss_kb'] / 1024:.1f} "
                f"| {cell['failed']} | {cell['server_load']:.0%} |"
            )
    return lines


def _chart(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (lines_axis, bars_axis) = plt.subplots(
        1, 2, figsize=(13, 7), gridspec_kw={"width_ratios": [3, 2]}
    )
    concurrencies = [1, 16, 64]
    # Twenty colours: matplotlib's default ten would give two clients the same one.
    colours = plt.get_cmap("tab20").colors
    for number, (name, cells) in enumerate(results.items()):
        points = [(n, rate(cells.get(f"0ms@{n}", {"error": ""}))) for n in concurrencies]
        measured = [(n, value) for n, value in points if value is not None]
        if measured:
            style = "-" if name.startswith(("AsyncPostal", "Postal")) else "--"
            xs, ys = zip(*measured, strict=True)
            colour = colours[(2 * number) % 20 + (2 * number) // 20]
            lines_axis.plot(xs, ys, style, marker="o", label=name, color=colour)
    lines_axis.set_xscale("log", base=2)
    lines_axis.set_yscale("log")
    lines_axis.set_xticks(concurrencies, [str(n) for n in concurrencies])
    lines_axis.set_xlabel("messages in flight")
    lines_axis.set_ylabel("messages / s (log)")
    lines_axis.set_title("No server delay")
    lines_axis.grid(True, which="both", alpha=0.3)
    lines_axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)

    bars = [(name, rate(cells.get("20ms@32", {"error": ""}))) for name, cells in results.items()]
    bars = [(name, value) for name, value in bars if value is not None]
    bars_axis.barh([name for name, _ in bars], [value for _, value in bars])
    bars_axis.set_xlabel("messages / s")
    bars_axis.set_title("20 ms server, 32 in flight")
    bars_axis.invert_yaxis()
    bars_axis.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(results: dict[str, dict[str, Any]], machine: dict[str, Any], folder: Path) -> None:
    """Write results.md, results.json and throughput.png into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    memory_file = folder / "memory.json"
    memory: list[dict[str, Any]] = (
        json.loads(memory_file.read_text()) if memory_file.exists() else []
    )
    (folder / "results.json").write_text(
        json.dumps({"machine": machine, "results": results, "memory": memory}, indent=2) + "\n"
    )
    _chart(results, folder / "throughput.png")
    versions = ", ".join(
        f"{name} {version}" for name, version in machine["versions"].items() if version
    )
    text = [
        "# postal-sdk send benchmark",
        "",
        f"Measured {machine['date']} on {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gb']} GB, {machine['implementation']} {machine['python']}, "
        f"{machine['os']}; {machine['pinning']}; load average at the end "
        f"{', '.join(f'{load:.2f}' for load in machine['load_average_1_5_15_min'])}.",
        "",
        f"Versions: {versions}.",
        "",
        "Every client sends the same one-recipient message to `benchmarks/server.py`, which "
        "answers each with a Postal success envelope (after 20 ms in the last column). "
        "Figures are messages per second, with the ratio to raw aiohttp in brackets. "
        "Each client is driven as its users send a batch; django-anymail's own bulk call "
        "sends one message at a time, so its second row adds a thread pool of the caller's "
        "(see the docstring of `benchmarks/run.py`).",
        "",
        *_matrix(results),
        "",
        "## Targets",
        "",
        *_targets(results, memory),
        "",
        "## Every cell",
        "",
        "Client CPU is the client process's user + system time per message sent; peak RSS is "
        "the client process's; server core load is the share of its core the server used.",
        "",
        *_details(results),
        "",
    ]
    if memory:
        text += [
            "## Memory of send_many",
            "",
            "| Messages | Peak RSS MB | RSS before the batch MB | Sent | Seconds |",
            "|---:|---:|---:|---:|---:|",
            *(
                f"| {m['messages']:,} | {m['peak_rss_kb'] / 1024:.1f} | "
                f"{m['rss_before_batch_kb'] / 1024:.1f} | {m['ok']:,} | {m['seconds']:.0f} |"
                for m in memory
            ),
            "",
        ]
    (folder / "results.md").write_text("\n".join(text))
    print("\n".join(text))
