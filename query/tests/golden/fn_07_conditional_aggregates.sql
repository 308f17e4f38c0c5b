-- countIf / sumIf / avgIf per app.
SELECT app_id,
       countIf(event_type = 'purchase') AS purchases,
       sumIf(revenue, event_type = 'purchase') AS purchase_revenue,
       countIf(event_type = 'refund') AS refunds,
       sumIf(revenue, event_type = 'refund') AS refund_revenue,
       avgIf(revenue, platform = 'android') AS android_avg
FROM events GROUP BY app_id ORDER BY app_id
