-- Alerts: what fires now first, then the latest 100 of the last 7 days, newest first.
SELECT
    state,
    rule,
    subject,
    first_seen,
    resolved_at,
    duration_seconds,
    value,
    baseline,
    threshold,
    message
FROM alerts_latest
WHERE first_seen > now64(3) - INTERVAL 7 DAY
ORDER BY state = 'firing' DESC, first_seen DESC, alert_id
LIMIT 100
