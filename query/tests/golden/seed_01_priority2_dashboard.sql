-- seeds/000: "Connect Dashboard to ClickHouse", as written.
SELECT
  count(*) as total_events,
  uniq(user_id) as active_users,
  sum(revenue) as total_revenue
FROM events
WHERE created_at >= today() - 30;
