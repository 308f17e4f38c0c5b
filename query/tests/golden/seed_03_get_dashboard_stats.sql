-- seeds/001: getDashboardStats with its parameters bound (app_id = 'shop', since 2026-03-01).
SELECT
  count() as total_events,
  uniq(user_id) as active_users,
  sum(toFloat64OrZero(event_data['revenue'])) as revenue
FROM events
WHERE app_id = 'shop' AND timestamp >= '2026-03-01 00:00:00'
