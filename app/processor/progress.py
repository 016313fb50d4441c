"""What each micro-batch did, for pipeline_progress: rates, state, lag, and its accounting.

The accounting identity: every Kafka record a batch reads is counted, removed as a
duplicate, dropped as late or rejected, and nothing else:

    read = counted + duplicates_removed + dropped_late + rejected

`read`, the duplicates and the late rows come from the metrics of the batch's own Spark
execution (the Kafka scan and the deduplicating stage), read inside the sink, so the row
is written with the batch's outputs under the same deduplication token: a crash between
a batch and its report cannot lose or double the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROGRESS_COLUMNS = (
    "query_name",
    "query_id",
    "run_id",
    "batch_id",
    "reported_at",
    "batch_time",
    "num_input_rows",
    "input_rows_per_second",
    "processed_rows_per_second",
    "batch_duration_ms",
    "rows_dropped_by_watermark",
    "state_rows",
    "kafka_lag",
    "watermark",
    "counted",
    "duplicates_removed",
    "rejected",
)


@dataclass(frozen=True)
class BatchAccount:
    read: int
    counted: int
    duplicates_removed: int
    dropped_late: int
    rejected: int

    @property
    def balanced(self) -> bool:
        return self.read == (
            self.counted + self.duplicates_removed + self.dropped_late + self.rejected
        )


@dataclass(frozen=True)
class ExecutionMetrics:
    read: int
    duplicates_removed: int
    dropped_late: int
    state_rows: int
    batch_time_ms: int
    watermark_ms: int


def _plan_nodes(plan: Any) -> list[Any]:
    nodes, stack = [], [plan]
    while stack:
        node = stack.pop()
        nodes.append(node)
        children = node.children()
        stack.extend(children.apply(i) for i in range(children.size()))
    return nodes


def _metric(node: Any, name: str) -> int:
    option = node.metrics().get(name)
    return int(option.get().value()) if option.isDefined() else 0


def execution_metrics(execution: Any) -> ExecutionMetrics:
    """Metrics of a micro-batch's execution (Spark's IncrementalExecution, via py4j).

    Read after the batch has been computed: the records the sources produced (the leaves
    of the plan), what the deduplicating stage dropped as repeats and as late, its state
    size, and the batch's clock and watermark from the offset log.
    """
    nodes = _plan_nodes(execution.executedPlan())
    leaves = [n for n in nodes if n.children().size() == 0]
    metadata = execution.offsetSeqMetadata()
    return ExecutionMetrics(
        read=sum(_metric(n, "numOutputRows") for n in leaves),
        duplicates_removed=sum(_metric(n, "numDroppedDuplicateRows") for n in nodes),
        dropped_late=sum(_metric(n, "numRowsDroppedByWatermark") for n in nodes),
        state_rows=sum(_metric(n, "numTotalStateRows") for n in nodes),
        batch_time_ms=int(metadata.batchTimestampMs()),
        watermark_ms=int(metadata.batchWatermarkMs()),
    )


def kafka_lag(progress: dict[str, Any]) -> int:
    """Records between the query's position and the end of the topic, worst partition.

    From a progress report (JSON) of Spark's: the sink reads the previous batch's, the
    newest there is while a batch runs.
    """
    lag = 0
    for source in progress.get("sources") or []:
        value = (source.get("metrics") or {}).get("maxOffsetsBehindLatest")
        if value not in (None, "", "NaN"):
            lag = max(lag, int(float(value)))
    return lag
