-- Rejected events by reason over the last hour.
SELECT reason, sum(events) AS events
FROM rejected_events_by_reason
WHERE minute >= now('UTC') - INTERVAL 1 HOUR
GROUP BY reason
ORDER BY events DESC, reason
