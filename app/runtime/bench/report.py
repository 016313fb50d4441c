"""The bench's outputs besides results.json: the printed table and the plot."""

from __future__ import annotations

from pathlib import Path


def _rate(value: float, unit: str = "events/s") -> str:
    return f"{value:,.0f} {unit}"


def table(results: dict) -> str:
    events = results["events"]
    clients = results["producers"]
    perf = clients["java-producer-performance"]
    program = results["producer_program"]
    drain = results["job_drain"]
    sustainable = results["sustainable"]
    memory = results["memory"]
    rows: list[tuple[str, str]] = [
        (f"a) producers, the same {events['count']:,} events ({events['mean_bytes']:.0f} B)", ""),
        ("   kafka-python", _rate(clients["kafka-python"]["events_per_second"])),
        ("   confluent-kafka", _rate(clients["confluent-kafka"]["events_per_second"])),
        (
            f"   Java ProducerPerformance (--record-size {perf['record_size']})",
            _rate(perf["records_per_second"], "records/s"),
        ),
        ("b) producer program flat out (python -m app.producer)", ""),
        *(
            (f"   PRODUCER_CLIENT={client}", _rate(run["events_per_second"]))
            for client, run in program.items()
        ),
        (
            f"c) job alone, draining {drain['events']:,} events "
            f"({drain['batches']} batches of <= {drain['max_offsets_per_trigger']:,})",
            _rate(drain["events_per_second"]),
        ),
        (
            f"d) sustainable: lag bounded, p99 freshness <= {sustainable['freshness_limit_s']:g} s",
            _rate(sustainable["events_per_second"])
            if sustainable["found"]
            else "none of the rates tried",
        ),
        ("e) freshness p50 / p95 / p99 (lag start -> end)", ""),
        *(
            (
                f"   at {s['target_events_per_second']:,.0f} events/s "
                f"(sent {s['events_per_second']:,.0f})",
                f"{s['freshness_p50_s']:.2f} / {s['freshness_p95_s']:.2f} / "
                f"{s['freshness_p99_s']:.2f} s ({s['lag_start']:,} -> {s['lag_end']:,})",
            )
            for s in results["freshness"]
        ),
        ("f) peak RSS (VmHWM)", ""),
        ("   Kafka broker JVM", f"{memory['broker_jvm_mib']:,.0f} MiB"),
        ("   Spark driver JVM", f"{memory['spark_driver_jvm_mib']:,.0f} MiB"),
        ("   driver's Python process (with chDB)", f"{memory['driver_python_mib']:,.0f} MiB"),
        *(
            (f"   producer: {name}", f"{mib:,.0f} MiB")
            for name, mib in memory["producers_mib"].items()
        ),
        (
            "   whole stack (broker, driver, steady producer): each one's peak, summed",
            f"{memory['whole_stack_mib']:,.0f} MiB",
        ),
        (
            "   whole stack at once: the highest sampled sum",
            f"{memory['whole_stack_at_once_mib']:,.0f} MiB "
            f"({memory['at_once_mib']['file_backed']:,.0f} MiB of it file pages)",
        ),
    ]
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"{'measure':<{width}}value", "-" * (width + 30)]
    lines += [f"{label:<{width}}{value}".rstrip() for label, value in rows]
    if sustainable["note"]:
        lines.append(f"note: {sustainable['note']}")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """Freshness p50/p99 and Kafka lag against the input rate, from every step of d and e."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    sustainable = results["sustainable"]
    steps = sorted(
        results["freshness"] + sustainable["steps"], key=lambda s: s["events_per_second"]
    )
    rates = [s["events_per_second"] for s in steps]
    failed = [s for s in steps if not s["passed"]]
    limit = sustainable["freshness_limit_s"]
    figure, (fresh, lag) = plt.subplots(2, 1, sharex=True, figsize=(8, 6.5))
    fresh.plot(rates, [s["freshness_p50_s"] for s in steps], "o-", label="p50")
    fresh.plot(rates, [s["freshness_p99_s"] for s in steps], "s-", label="p99")
    fresh.plot(
        [s["events_per_second"] for s in failed],
        [s["freshness_p99_s"] for s in failed],
        "x",
        color="red",
        markersize=12,
        label="step failed",
    )
    fresh.axhline(limit, color="grey", linestyle="--", label=f"p99 limit {limit:g} s")
    fresh.set_ylabel("freshness (s)")
    fresh.set_ylim(bottom=0)
    fresh.legend(loc="upper left")
    lag.plot(rates, [s["lag_start"] for s in steps], "o-", label="at the step's start")
    lag.plot(rates, [s["lag_end"] for s in steps], "s-", label="at its end")
    lag.set_ylabel("Kafka lag (records, worst partition)")
    lag.set_xlabel("input rate (events/s, as sent)")
    lag.set_ylim(bottom=0, top=max([1, *(s["lag_end"] for s in steps)]) * 1.2)
    lag.legend(loc="upper left")
    fresh.set_xscale("log")
    lag.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    lag.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    lag.xaxis.set_minor_locator(NullLocator())
    for axes in (fresh, lag):
        axes.grid(alpha=0.3)
        if sustainable["found"]:
            axes.axvline(sustainable["events_per_second"], color="green", alpha=0.5)
    found = (
        f"sustainable {sustainable['events_per_second']:,.0f} events/s"
        if sustainable["found"]
        else "no rate tried was sustainable"
    )
    figure.suptitle(f"clickstream bench ({results['mode']}): {found}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
