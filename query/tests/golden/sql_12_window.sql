-- Window functions: running revenue per app in time order.
SELECT app_id, timestamp, revenue,
       sum(coalesce(revenue, 0)) OVER (PARTITION BY app_id ORDER BY timestamp) AS running,
       row_number() OVER (PARTITION BY app_id ORDER BY timestamp) AS n
FROM events ORDER BY app_id, timestamp
