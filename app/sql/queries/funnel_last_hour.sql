-- Bar chart: the funnel over the last hour, one bar per step (home, category, product,
-- cart, checkout, purchase): the sessions that reached it, and the share of the previous
-- step's sessions that did. Sessions whose agent is a known crawler are left out.
SELECT step_name, sessions, conversion_from_previous
FROM funnel_last(minutes = 60, bots = 0)
ORDER BY step
