-- Pipeline health per minute over the last hour: input rate, batch duration, late rows, lag.
SELECT minute, input_rows_per_second, max_batch_duration_ms, late_rows_dropped, max_kafka_lag
FROM pipeline_health
WHERE query_name = 'clickstream' AND minute >= now('UTC') - INTERVAL 1 HOUR
ORDER BY minute
