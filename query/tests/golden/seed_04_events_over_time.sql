-- seeds/001: chart 'events-over-time' with app_id = 'shop'.
SELECT
  toStartOfHour(timestamp) as time,
  count() as events
FROM events
WHERE app_id = 'shop' AND timestamp >= now() - INTERVAL 24 HOUR
GROUP BY time ORDER BY time
