-- argMax / argMin, quantile(level)(x) (interpolated) and quantileExact(level)(x).
SELECT argMax(user_id, revenue) AS top_spender, argMin(user_id, revenue) AS lowest_spender,
       argMax(event_type, timestamp) AS last_event,
       quantile(0.5)(revenue) AS median_revenue, quantile(0.9)(revenue) AS p90_revenue,
       quantileExact(0.5)(revenue) AS exact_median
FROM events WHERE app_id = 'shop'
