-- Where every record went, per minute over the last hour: read = counted + duplicates
-- removed + dropped late + rejected (balanced = 1 when it holds for every batch).
SELECT minute, records_read, counted, duplicates_removed, dropped_late, rejected, balanced
FROM pipeline_accounting_1m
WHERE query_name = 'clickstream' AND minute >= now('UTC') - INTERVAL 1 HOUR
ORDER BY minute
