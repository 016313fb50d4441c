-- Bar chart: clicks per page in the last complete minute and the running one.
SELECT page_url, sum(clicks) AS clicks
FROM page_clicks_latest
WHERE window_start >= toStartOfMinute(now('UTC')) - INTERVAL 1 MINUTE
GROUP BY page_url
ORDER BY clicks DESC, page_url
LIMIT 20
