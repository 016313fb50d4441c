-- Line chart: clicks per minute over the last hour for the ten busiest pages of that hour.
SELECT window_start AS minute, page_url, clicks
FROM page_clicks_latest
WHERE window_start >= now('UTC') - INTERVAL 1 HOUR
  AND page_url IN (SELECT page_url FROM top_pages(minutes = 60) LIMIT 10)
ORDER BY minute, page_url
