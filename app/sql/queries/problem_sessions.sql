-- The latest 100 closed sessions with a problem (abandoned cart, long session or one page
-- viewed again and again), newest end first, with their flags.
SELECT
    session_end,
    session_id,
    user_id,
    duration_seconds,
    page_views,
    deepest_step_name,
    exit_page,
    abandoned_cart,
    long_session,
    repeated_views,
    max_views_of_one_page,
    is_bot
FROM problem_sessions
ORDER BY session_end DESC, session_id
LIMIT 100
