-- What dashboards (Metabase, the terminal view) query. Views, so a dashboard never needs
-- to know about versions, FINAL or the engine.

-- The latest count of each (window, page): argMax over the version column.
CREATE VIEW IF NOT EXISTS page_clicks_latest AS
SELECT
    window_start,
    any(window_end) AS window_end,
    page_url,
    argMax(clicks, batch_id) AS clicks
FROM page_clicks_1m
GROUP BY window_start, page_url;

-- Top pages over the last N minutes: SELECT * FROM top_pages(minutes = 5).
CREATE VIEW IF NOT EXISTS top_pages AS
SELECT
    page_url,
    sum(clicks) AS clicks
FROM page_clicks_latest
WHERE window_start >= toStartOfMinute(now('UTC')) - toIntervalMinute({minutes:UInt32})
GROUP BY page_url
ORDER BY clicks DESC, page_url;

-- Rejected events per minute and reason.
CREATE VIEW IF NOT EXISTS rejected_events_by_reason AS
SELECT
    toStartOfMinute(kafka_timestamp) AS minute,
    reason,
    count() AS events
FROM rejected_events FINAL
GROUP BY minute, reason;

-- Pipeline health per minute and query: rates, batch duration, late rows, lag.
CREATE VIEW IF NOT EXISTS pipeline_health AS
SELECT
    toStartOfMinute(reported_at) AS minute,
    query_name,
    sum(num_input_rows) AS input_rows,
    avg(input_rows_per_second) AS input_rows_per_second,
    avg(processed_rows_per_second) AS processed_rows_per_second,
    max(batch_duration_ms) AS max_batch_duration_ms,
    sum(rows_dropped_by_watermark) AS late_rows_dropped,
    max(kafka_lag) AS max_kafka_lag
FROM pipeline_progress
GROUP BY minute, query_name;
