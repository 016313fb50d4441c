-- Unique visitors per minute over the last hour (distinct user_id in each minute of
-- event time, exact), also without agents on the known-crawler list, with that minute's
-- events.
SELECT window_start AS minute, unique_visitors, unique_visitors_without_bot_agents, events
FROM unique_visitors_per_minute
WHERE window_start >= now('UTC') - INTERVAL 1 HOUR
ORDER BY minute
