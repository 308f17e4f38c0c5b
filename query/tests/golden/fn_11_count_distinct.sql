-- count(DISTINCT x) is planned as uniq_exact(x) for strings, integers and timestamps (floats
-- keep DataFusion's plan): the same counts as a DISTINCT subquery, NULLs not counted, the
-- column named as DataFusion names it, grouped and ungrouped.
SELECT
  count(DISTINCT user_id),
  count(DISTINCT device_id) AS devices,
  count(DISTINCT revenue) AS revenues,
  count(DISTINCT timestamp) AS times,
  (SELECT count(*) FROM (SELECT DISTINCT user_id FROM events WHERE user_id IS NOT NULL)) AS users_check,
  (SELECT count(*) FROM (SELECT DISTINCT device_id FROM events)) AS devices_check,
  (SELECT count(*) FROM (SELECT DISTINCT timestamp FROM events)) AS times_check,
  count() AS n
FROM events
