-- Sessions per minute they started, over the last 3 hours (closed sessions only): bounce
-- rate, average duration, and the sessions with each problem flag or flagged as bots.
SELECT
    window_start AS minute,
    sessions,
    bounces,
    bounce_rate,
    avg_duration_seconds,
    abandoned_carts,
    long_sessions,
    repeated_views,
    bot_sessions
FROM sessions_per_minute
WHERE window_start >= now('UTC') - INTERVAL 3 HOUR
ORDER BY minute
