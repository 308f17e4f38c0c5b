-- count(DISTINCT x) per group next to other aggregates; NULLs are not counted (game/android:
-- 2 events, one without a user: 1 user).
SELECT app_id, platform, count(DISTINCT user_id) AS users, count(DISTINCT event_type) AS types,
       count() AS n, sum(revenue) AS revenue
FROM events
GROUP BY app_id, platform
ORDER BY app_id, platform
