-- Standard SQL keeps working: a CTE and a self-join (installs followed by a purchase).
WITH installs AS (
  SELECT app_id, user_id, min(timestamp) AS installed FROM events
  WHERE event_type = 'install' AND user_id IS NOT NULL GROUP BY 1, 2
)
SELECT i.app_id, i.user_id, count(p.user_id) AS purchases_after_install
FROM installs i LEFT JOIN events p
  ON p.app_id = i.app_id AND p.user_id = i.user_id AND p.event_type = 'purchase' AND p.timestamp > i.installed
GROUP BY 1, 2 ORDER BY 1, 2
