-- Unique users per campaign and source (uniq and uniqExact agree on exact counts).
SELECT attribution['campaign'] AS campaign, attribution_source AS source,
       uniq(user_id) AS users, uniqExact(device_id) AS devices, count() AS events
FROM events GROUP BY 1, 2 ORDER BY campaign NULLS LAST, source
