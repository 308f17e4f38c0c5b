-- seeds/001: the body of dashboard_stats_mv, as written.
SELECT
    app_id,
    toStartOfHour(timestamp) as hour,
    count() as event_count,
    uniq(user_id) as unique_users,
    sum(toFloat64OrZero(event_data['revenue'])) as revenue
FROM events
GROUP BY app_id, hour;
