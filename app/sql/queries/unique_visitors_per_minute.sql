-- Unique visitors per minute over the last hour (distinct user_id in each minute of
-- event time, exact), with that minute's events.
SELECT window_start AS minute, unique_visitors, events
FROM unique_visitors_per_minute
WHERE window_start >= now('UTC') - INTERVAL 1 HOUR
ORDER BY minute
