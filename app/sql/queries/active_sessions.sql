-- Sessions with an event in the last 5 minutes (wall clock) and those 5 minutes' events
-- (all of them, with a session or not), and how many of each come from agents on the
-- known-crawler list.
SELECT active_sessions, active_bot_agent_sessions, events, bot_agent_events
FROM active_sessions
