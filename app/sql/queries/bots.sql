-- Users with at least one session flagged as a bot, last seen first: how many such
-- sessions, and the rules that flagged them.
SELECT
    user_id,
    bot_sessions,
    arrayStringConcat(arraySort(reasons), ', ') AS reasons,
    first_seen,
    last_seen
FROM bots
ORDER BY last_seen DESC, user_id
LIMIT 100
